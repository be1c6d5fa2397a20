"""Extraction speed: clips per second for audio (decode + 130 ComParE LLDs) and for video (decode +
face detector + embedder), on generated CREMA-D-shaped clips (480x360 FLV at 30 fps, 16 kHz WAV).

    python benchmarks/extract_speed.py [--clips 5] [--seconds 3] [--vgg-frames 8]

VGG-Face is timed with random weights at full size (the same arithmetic as real weights): seconds
per frame over --vgg-frames crops, and the implied clips per second at 30 frames/s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from media_tree import TONES, draw_face, speech_like, write_video, write_wav  # noqa: E402

from avbench.data.embedders import PixelEmbedder  # noqa: E402
from avbench.data.extract_audio import ComParE  # noqa: E402
from avbench.data.faces import HaarDetector, crop_faces  # noqa: E402
from avbench.data.media import iter_video, read_audio  # noqa: E402
from avbench.data.vggface import VGGFace  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--vgg-frames", type=int, default=8)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    n_frames = int(args.seconds * 30)
    tones = list(TONES.values())
    for k in range(args.clips):
        sig = speech_like(args.seconds, k)
        write_wav(tmp / f"{k}.wav", sig)
        frames = [draw_face(tones[k % 5], h=360, w=480, cx=240 + int(5 * np.sin(i / 5)), cy=170, s=1.6)
                  for i in range(n_frames)]
        write_video(tmp / f"{k}.flv", frames, sig)
    compare = ComParE()
    t = time.perf_counter()
    for k in range(args.clips):
        compare(read_audio(tmp / f"{k}.wav"))
    audio_s = (time.perf_counter() - t) / args.clips
    det, pix = HaarDetector(), PixelEmbedder()
    timings = {"decode": 0.0, "detect": 0.0, "crop+embed": 0.0}
    found = 0
    for k in range(args.clips):
        t = time.perf_counter()
        frames = list(iter_video(tmp / f"{k}.flv"))
        timings["decode"] += time.perf_counter() - t
        t = time.perf_counter()
        boxes = det(frames)
        timings["detect"] += time.perf_counter() - t
        t = time.perf_counter()
        pix(crop_faces(frames, boxes))
        timings["crop+embed"] += time.perf_counter() - t
        found += sum(b is not None for b in boxes)
    video_s = sum(timings.values()) / args.clips
    model = VGGFace().eval()
    x = torch.randn(args.vgg_frames, 3, 224, 224)
    with torch.no_grad():
        model(x[:1])
        t = time.perf_counter()
        model(x)
    vgg_frame_s = (time.perf_counter() - t) / args.vgg_frames
    print(f"torch threads {torch.get_num_threads()}; {args.clips} clips of {args.seconds:g} s "
          f"({n_frames} frames of 480x360)")
    print(f"audio (WAV decode + ComParE): {audio_s:.3f} s/clip = {1 / audio_s:.1f} clips/s")
    print(f"video (FLV decode + haar + pixels): {video_s:.3f} s/clip = {1 / video_s:.2f} clips/s; "
          + ", ".join(f"{k} {v / args.clips:.3f} s" for k, v in timings.items())
          + f"; faces found {found / (args.clips * n_frames):.1%}")
    print(f"VGG-Face fc6 (full size, random weights, batch {args.vgg_frames}): {vgg_frame_s:.3f} s/frame "
          f"= {1 / (vgg_frame_s * n_frames):.3f} clips/s of {n_frames} frames (plus decode + detect)")


if __name__ == "__main__":
    main()
