"""Seconds per training step, eval forward time, peak RSS and achieved GFLOP/s of a model.

Each setting runs in its own subprocess, so the peak RSS printed is that
setting's alone; the settings run one after another in the same invocation,
so their ratios share the machine's load.  A step is forward, backward,
gradient-norm clipping (0.8) and an Adam step on one batch of random features;
the first step is a warm-up and the best of the next ``--steps`` is reported.

Settings:

* ``reference``: a straightforward AuxFormer written the way the released code
  is (``benchmarks/reference_auxformer.py``: ``nn.MultiheadAttention`` with
  its weights materialised and dropped out, global zero padding, causal mask),
  the yardstick of issue 12's targets;
* ``avbench``: avbench's model as ``avbench run`` trains it;
* ``avbench-lean``: the same with ``--memory lean`` (attention layers recomputed in
  the backward pass);
* ``avbench-sdpa``: avbench's model on the code before issue 12
  (``F.scaled_dot_product_attention`` and ``bernoulli_`` dropout masks), to
  show what each change brought.

GFLOP/s is the reference step's matrix-product FLOPs (counted once with
``torch.utils.flop_counter`` at batch 1, times the batch: forward and
backward) divided by the step time, for every setting: useful work per
second, whatever a setting skips (avbench skips the masked upper triangle of
causal attention) or recomputes.

    python benchmarks/train_step.py                                   # paper AuxFormer, B32, 160/75
    python benchmarks/train_step.py --audio-frames 300 --visual-frames 150
    python benchmarks/train_step.py --settings avbench --profile quick --audio-frames 40 --visual-frames 38 --visual-dim 64
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
SETTINGS = ("reference", "avbench", "avbench-lean", "avbench-sdpa")
GEMM_PEAK_GFLOPS = 180.0  # float32 2048x2048 torch.mm on this 2-core machine, best of runs (field notes)
TARGETS = {(160, 75): 2.0, (300, 150): 3.0}  # speed-up over the reference (issue 12); peak RSS <= 1/4


def build(setting: str, args):
    """The model of a setting and a function mapping (audio, visual, lengths) to its outputs."""
    if setting == "reference":
        if args.model != "auxformer" or args.profile != "paper" or args.visual_dim != 4096:
            raise SystemExit("the reference setting is AuxFormer at the paper's dimensions only")
        sys.path.insert(0, str(HERE))
        from reference_auxformer import ReferenceAuxFormer

        model = ReferenceAuxFormer(args.classes)
        return model, lambda a, v, la, lv: model(a, v)
    from avbench.models import create_model, get_model_meta
    from avbench.profiles import get_profile

    if setting == "avbench-sdpa":
        use_pre_issue12_kernels()
    meta = get_model_meta(args.model)
    config = get_profile(args.profile).model_config(meta)
    model = create_model(args.model, num_classes=args.classes, audio_dim=130, visual_dim=args.visual_dim, **config)
    if setting == "avbench-lean":
        from avbench.models.blocks import set_recompute

        set_recompute(model, True)
    return model, model


def use_pre_issue12_kernels() -> None:
    """avbench's blocks as they were before issue 12: SDPA attention, ``F.dropout`` masks."""
    import torch.nn.functional as F

    from avbench.models import blocks, fast_ops

    blocks.attention = lambda q, k, v, bias, p, training: F.scaled_dot_product_attention(
        q, k, v, attn_mask=bias, dropout_p=p if training else 0.0)
    blocks.relu_dropout = lambda x, p, training: F.dropout(F.relu(x), p, training)
    fast_ops.Dropout.forward = lambda self, x: F.dropout(x, self.p, self.training)


def inputs(args, batch: int):
    g = torch.Generator().manual_seed(0)
    audio = torch.randn(batch, args.audio_frames, 130, generator=g)
    visual = torch.randn(batch, args.visual_frames, args.visual_dim, generator=g)
    la = torch.full((batch,), args.audio_frames)
    lv = torch.full((batch,), args.visual_frames)
    labels = torch.randint(0, args.classes, (batch,), generator=g)
    return audio, visual, la, lv, labels


def loss_of(outputs, labels):
    import torch.nn.functional as F

    return sum(F.cross_entropy(o, labels) for o in outputs.values()) / len(outputs)


def child(setting: str, args) -> dict:
    torch.manual_seed(0)
    model, run = build(setting, args)
    opt = torch.optim.Adam(model.parameters(), lr=7.25e-4)
    audio, visual, la, lv, labels = inputs(args, args.batch)
    times = []
    model.train()
    for _ in range(args.steps + 1):
        t = time.perf_counter()
        loss = loss_of(run(audio, visual, la, lv), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.8)
        opt.step()
        times.append(time.perf_counter() - t)
    model.eval()
    with torch.no_grad():
        t = time.perf_counter()
        run(audio, visual, la, lv)
        eval_s = time.perf_counter() - t
    return {"step_s": min(times[1:]), "steps_s": times[1:], "eval_s": eval_s,
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20,
            "params": sum(p.numel() for p in model.parameters()), "threads": torch.get_num_threads()}


def reference_flops(args) -> float:
    """Matrix-product FLOPs of one reference training step (forward + backward) at ``args.batch``."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model, run = build("reference", args)
    audio, visual, la, lv, labels = inputs(args, 1)
    with FlopCounterMode(display=False) as counter:
        loss_of(run(audio, visual, la, lv), labels).backward()
    return counter.get_total_flops() * args.batch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--settings", default="reference,avbench",
                   help=f"comma-separated, from {', '.join(SETTINGS)}")
    p.add_argument("--model", default="auxformer")
    p.add_argument("--profile", default="paper")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--audio-frames", type=int, default=160)
    p.add_argument("--visual-frames", type=int, default=75)
    p.add_argument("--visual-dim", type=int, default=4096)
    p.add_argument("--classes", type=int, default=6)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--child", choices=SETTINGS, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args)))
        return
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    for s in settings:
        if s not in SETTINGS:
            raise SystemExit(f"unknown setting {s!r}; expected some of {', '.join(SETTINGS)}")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, model {args.model} ({args.profile}), "
          f"batch {args.batch}, frames {args.audio_frames}/{args.visual_frames}, visual dim {args.visual_dim}, "
          f"best of {args.steps} steps after one warm-up; load average {os.getloadavg()[0]:.2f} at start")
    flops = reference_flops(args) if "reference" in settings else None
    if flops:
        print(f"reference step: {flops / 1e9:.1f} GFLOP of matrix products (forward + backward)")
    argv = [a for a in sys.argv[1:]]
    results = {}
    for s in settings:
        out = subprocess.run([sys.executable, __file__, *argv, "--child", s], capture_output=True, text=True,
                             env=os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [
                                 str(HERE.parent), os.environ.get("PYTHONPATH", "")]))})
        if out.returncode:
            raise SystemExit(f"setting {s} failed:\n{out.stderr}")
        results[s] = r = json.loads(out.stdout.strip().splitlines()[-1])
        gflops = f", {flops / r['step_s'] / 1e9:.0f} GFLOP/s ({flops / r['step_s'] / 1e9 / GEMM_PEAK_GFLOPS:.0%} " \
                 f"of the {GEMM_PEAK_GFLOPS:.0f} GFLOP/s GEMM peak)" if flops else ""
        print(f"{s:>13}: train step {r['step_s']:.3f} s (steps {', '.join(f'{t:.3f}' for t in r['steps_s'])}), "
              f"eval forward {r['eval_s']:.3f} s, peak RSS {r['peak_rss_gib']:.2f} GiB, "
              f"{r['params']:,} parameters{gflops}")
    for name in ("avbench", "avbench-lean"):
        if "reference" in results and name in results:
            compare(results["reference"], results[name], name, args)


def compare(ref: dict, av: dict, name: str, args) -> None:
    """Prints a setting's speed-up and memory against the reference, with issue 12's targets."""
    if ref["params"] != av["params"]:
        print(f"WARNING: parameter counts differ ({ref['params']:,} vs {av['params']:,})")
    speed = ref["step_s"] / av["step_s"]
    mem = av["peak_rss_gib"] / ref["peak_rss_gib"]
    target = TARGETS.get((args.audio_frames, args.visual_frames))
    verdict = "" if target is None else f" (target >= {target:.0f}x: {'met' if speed >= target else 'MISSED'})"
    print(f"{name}: speed-up over the reference {speed:.2f}x{verdict}; peak RSS / reference's {mem:.2f} "
          f"(target <= 0.25: {'met' if mem <= 0.25 else 'MISSED'}); eval forward "
          f"{ref['eval_s'] / av['eval_s']:.2f}x faster")


if __name__ == "__main__":
    main()
