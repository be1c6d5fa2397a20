"""Extraction speed and peak memory of every extractor, on generated CREMA-D-shaped clips.

    python benchmarks/extract_speed.py [--clips 5] [--seconds 3] [--size tiny|base|large] [--device cpu|cuda]

Each extractor runs in its own process (so its peak RSS is its own) over ``--clips`` clips of
``--seconds`` s: 16 kHz WAV for the audio extractors, 480x360 FLV at 30 fps for the video path,
224x224 face crops (one per frame) for the face embedders.  It prints seconds per clip, the ratio
to ComParE measured in the same command (timings on a shared machine drift; ratios less so), and
the process's peak RSS before importing torch and after building and running the extractor.

The speech models (wav2vec2, HuBERT, WavLM) and CLIP run with random weights from a config of
``--size``: ``tiny`` (16-d, 2 layers; runs anywhere in seconds), ``base`` (wav2vec2-base / ViT-B/32
shapes, 12 layers of 768) or ``large`` (24 layers of 1024, the released AuxFormer's
wav2vec2-large-robust before pruning); the arithmetic of random and trained weights is the same.
Nothing is downloaded.  ``--device cuda`` times them on the GPU (when present) as well.
VGG-Face runs at full size with random weights.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

SIZES = {
    "tiny": {},
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
             "conv_dim": (512,) * 7, "num_conv_pos_embeddings": 128, "num_conv_pos_embedding_groups": 16},
    "large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096,
              "conv_dim": (512,) * 7, "num_conv_pos_embeddings": 128, "num_conv_pos_embedding_groups": 16,
              "do_stable_layer_norm": True, "feat_extract_norm": "layer"},
}
CLIP_SIZES = {"tiny": {}, "base": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                                   "num_attention_heads": 12, "image_size": 224, "patch_size": 32},
              "large": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                        "num_attention_heads": 16, "image_size": 224, "patch_size": 14}}


def peak_mib() -> float:
    """This process's peak RSS (VmHWM: reset by exec, unlike getrusage's ru_maxrss, which a spawned
    child inherits from the parent that forked it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_media(folder: Path, clips: int, seconds: float) -> None:
    from media_tree import TONES, draw_face, speech_like, write_video, write_wav

    tones = list(TONES.values())
    for k in range(clips):
        sig = speech_like(seconds, k)
        write_wav(folder / f"{k}.wav", sig)
        frames = [draw_face(tones[k % 5], h=360, w=480, cx=240 + int(5 * np.sin(i / 5)), cy=170, s=1.6)
                  for i in range(int(seconds * 30))]
        write_video(folder / f"{k}.flv", frames, sig)


def make_checkpoints(folder: Path, size: str) -> None:
    import transformers as tf
    from ssl_checkpoints import clip_checkpoint, speech_checkpoint

    for kind in ("wav2vec2", "hubert", "wavlm"):
        extra = {k: v for k, v in SIZES[size].items()
                 if kind == "wav2vec2" or k not in ("do_stable_layer_norm", "feat_extract_norm")}
        speech_checkpoint(folder / kind, kind, **extra)
    if size == "tiny":
        clip_checkpoint(folder / "clip")
    else:
        tf.CLIPVisionModel(tf.CLIPVisionConfig(**CLIP_SIZES[size])).save_pretrained(folder / "clip")
        tf.CLIPImageProcessor().save_pretrained(folder / "clip")


def measure(name: str, media: str, ckpt: str, clips: int, device: str, queue) -> None:
    """Runs in a child process: builds one extractor, times it per clip, reports peak RSS."""
    before = peak_mib()  # the interpreter and numpy; torch and the extractor come after
    import torch

    torch.manual_seed(0)
    media, ckpt = Path(media), Path(ckpt)
    from avbench.data.media import iter_video, read_audio

    if name in ("compare", "wav2vec2", "hubert", "wavlm"):
        from avbench.data.embedders import make_extractor

        options = {} if name == "compare" else {"model": ("--audio-model", ckpt / name, True)}
        tool = make_extractor("audio", name, options, {"device": device})
        run = lambda k: tool(read_audio(media / f"{k}.wav"), 16000)  # noqa: E731
    elif name == "video: haar + pixels":
        from avbench.data.embedders import PixelEmbedder
        from avbench.data.faces import HaarDetector, crop_faces

        det, pix = HaarDetector(), PixelEmbedder()

        def run(k):
            frames = list(iter_video(media / f"{k}.flv"))
            return pix(crop_faces(frames, det(frames)))
    else:  # face embedders on one 224x224 crop per frame of a clip
        n_frames = sum(1 for _ in iter_video(media / "0.flv"))
        crops = np.random.default_rng(0).integers(0, 256, (n_frames, 224, 224, 3), dtype=np.uint8)
        if name == "clip":
            from avbench.data.clip_faces import CLIPFaces

            tool = CLIPFaces(model=ckpt / "clip", device=device)
        else:
            from avbench.data.vggface import VGGFace

            net = VGGFace().eval().to(device)

            def tool(c):
                with torch.no_grad():
                    x = torch.as_tensor(c, dtype=torch.float32, device=device).permute(0, 3, 1, 2)
                    return torch.cat([net(x[i:i + 32]) for i in range(0, len(x), 32)]).cpu()
        run = lambda k: tool(crops)  # noqa: E731
    run(0)  # warm-up (lazy initialisation, kernels)
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for k in range(clips):
        run(k)
    if device == "cuda":
        torch.cuda.synchronize()
    queue.put({"s_per_clip": (time.perf_counter() - t) / clips, "rss_before_mib": before, "peak_rss_mib": peak_mib()})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--size", choices=list(SIZES), default="tiny")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--only", nargs="*", default=None, help="Extractors to time (default: all).")
    args = ap.parse_args()
    import torch

    tmp = Path(tempfile.mkdtemp())
    make_media(tmp, args.clips, args.seconds)
    make_checkpoints(tmp / "ckpt", args.size)
    names = args.only or ["compare", "wav2vec2", "hubert", "wavlm", "video: haar + pixels", "clip", "vggface"]
    devices = ["cpu"] + (["cuda"] if args.device == "cuda" and torch.cuda.is_available() else [])
    if args.device == "cuda" and len(devices) == 1:
        print("CUDA: SKIPPED (no GPU visible)")
    ctx = mp.get_context("spawn")
    rows = []
    for device in devices:
        for name in names:
            if device == "cuda" and name in ("compare", "video: haar + pixels"):
                continue  # CPU-only tools
            q = ctx.Queue()
            p = ctx.Process(target=measure, args=(name, str(tmp), str(tmp / "ckpt"), args.clips, device, q))
            p.start()
            p.join()
            if p.exitcode:
                print(f"{name} on {device}: failed (exit {p.exitcode})")
                continue
            rows.append({"extractor": name, "device": device, **q.get()})
    ref = next((r["s_per_clip"] for r in rows if r["extractor"] == "compare"), None)
    print(f"{args.clips} clips of {args.seconds:g} s; speech/CLIP size {args.size}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'extractor':24} {'device':6} {'s/clip':>8} {'x compare':>10} {'RSS before':>11} {'peak RSS':>9}")
    for r in rows:
        ratio = f"{r['s_per_clip'] / ref:.2f}" if ref else "-"
        print(f"{r['extractor']:24} {r['device']:6} {r['s_per_clip']:8.3f} {ratio:>10} "
              f"{r['rss_before_mib']:9.0f} MiB {r['peak_rss_mib']:5.0f} MiB")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
