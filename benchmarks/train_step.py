"""Seconds per training step, eval forward time and peak memory of a model.

Compares, in the same process so the ratio is meaningful on a noisy machine,
either avbench's attention (``F.scaled_dot_product_attention``, dropout fused)
with the explicit softmax -> dropout -> matmul form (``--compare impl``), or
the causal attention mask (the released code's default, avbench's default)
with none (``--compare causal``).

    python benchmarks/train_step.py                       # paper AuxFormer, 160/75 frames
    python benchmarks/train_step.py --audio-frames 300 --visual-frames 150 --steps 2
    python benchmarks/train_step.py --model auxformer --profile quick --audio-frames 40 --visual-frames 38
    python benchmarks/train_step.py --compare causal --profile quick --audio-frames 40 --visual-frames 38 --visual-dim 64
"""

from __future__ import annotations

import argparse
import math
import resource
import time

import torch
import torch.nn.functional as F

from avbench.models import create_model, get_model_meta
from avbench.models import blocks
from avbench.profiles import get_profile
from avbench.training import total_loss


def explicit_attention(q, k, v, attn_mask=None, dropout_p=0.0):
    """The textbook form: materialises the weights and draws a dropout mask over them.

    ``attn_mask`` is avbench's additive key bias (0 or -inf)."""
    w = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if attn_mask is not None:
        w = w + attn_mask
    w = F.dropout(torch.softmax(w, dim=-1), dropout_p)
    return w @ v


def measure(args, impl: str, causal: bool = True) -> dict[str, float]:
    original = F.scaled_dot_product_attention
    if impl == "explicit":
        blocks.F.scaled_dot_product_attention = explicit_attention
    try:
        torch.manual_seed(0)
        meta = get_model_meta(args.model)
        config = get_profile(args.profile).model_config(meta)
        if "causal" in meta.options():
            config["causal"] = causal
        model = create_model(args.model, num_classes=args.classes, audio_dim=130, visual_dim=args.visual_dim,
                             **config)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        b = args.batch
        audio = torch.randn(b, args.audio_frames, 130)
        visual = torch.randn(b, args.visual_frames, args.visual_dim)
        la = torch.randint(args.audio_frames // 2, args.audio_frames + 1, (b,))
        lv = torch.randint(args.visual_frames // 2, args.visual_frames + 1, (b,))
        labels = torch.randint(0, args.classes, (b,))
        times = []
        model.train()
        for _ in range(args.steps + 1):  # first step is warm-up
            t = time.perf_counter()
            loss = total_loss(model, model(audio, visual, la, lv), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t)
        model.eval()
        with torch.no_grad():
            t = time.perf_counter()
            model(audio, visual, la, lv)
            eval_s = time.perf_counter() - t
        return {"step_s": min(times[1:]), "eval_s": eval_s}
    finally:
        blocks.F.scaled_dot_product_attention = original


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="auxformer")
    p.add_argument("--profile", default="paper")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--audio-frames", type=int, default=160)
    p.add_argument("--visual-frames", type=int, default=75)
    p.add_argument("--visual-dim", type=int, default=4096)
    p.add_argument("--classes", type=int, default=6)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--impl", choices=["both", "sdpa", "explicit"], default="both")
    p.add_argument("--compare", choices=["impl", "causal"], default="impl",
                   help="impl: SDPA vs explicit attention; causal: causal mask on vs off (SDPA)")
    args = p.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, model {args.model} ({args.profile}), "
          f"batch {args.batch}, frames {args.audio_frames}/{args.visual_frames}, visual dim {args.visual_dim}")
    if args.compare == "causal":
        res = {}
        for _ in range(2):  # interleaved twice: load on a shared machine hits both settings
            for causal in (True, False):
                r = measure(args, "sdpa", causal)
                best = res.setdefault(causal, r)
                res[causal] = {k: min(best[k], r[k]) for k in r}
        for causal in (True, False):
            print(f"causal={str(causal):<5}: train step {res[causal]['step_s']:.4f} s, "
                  f"eval forward {res[causal]['eval_s']:.4f} s")
        print(f"causal / non-causal: train step {res[True]['step_s'] / res[False]['step_s']:.2f}, "
              f"eval {res[True]['eval_s'] / res[False]['eval_s']:.2f}")
        print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
        return
    impls = ["sdpa", "explicit"] if args.impl == "both" else [args.impl]
    res = {}
    for impl in impls:
        res[impl] = measure(args, impl)
        print(f"{impl:>9}: train step {res[impl]['step_s']:.3f} s (best of {args.steps}), "
              f"eval forward {res[impl]['eval_s']:.3f} s")
    if len(res) == 2:
        print(f"explicit / sdpa train-step ratio: {res['explicit']['step_s'] / res['sdpa']['step_s']:.2f}")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
