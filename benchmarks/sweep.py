"""Wall time of a protocol sweep, sequential (1 job x all threads) versus parallel (N jobs x 1 thread),
and the evaluation-to-training time ratio of the masking protocol (target: under 15%).

    python benchmarks/sweep.py                      # optimized, auxformer + baseline1, quick, 2 seeds
    python benchmarks/sweep.py --protocol masking --models auxformer --seeds 3 --jobs 1
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from avbench.runner import run


def timed(args, jobs: int) -> tuple[float, object]:
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        # the threads split between the jobs, as this benchmark compares (avbench's default is 1 per unit)
        summary = run(args.protocol, args.models, profile=args.profile, seeds=args.seeds, out=out, jobs=jobs,
                      threads=max(1, torch.get_num_threads() // jobs), progress=False, echo=lambda s: None)
        return time.perf_counter() - t, summary


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--protocol", default="optimized")
    p.add_argument("--models", nargs="+", default=["auxformer", "baseline1"])
    p.add_argument("--profile", default="quick")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; protocol {args.protocol}, "
          f"models {' '.join(args.models)}, profile {args.profile}, {args.seeds} seeds (synthetic corpus)")
    walls = {}
    for jobs in args.jobs:
        walls[jobs], s = timed(args, jobs)
        print(f"jobs {jobs}: wall {walls[jobs]:.1f} s for {s.trained} units; recorded training {s.train_seconds:.1f} s, "
              f"evaluation {s.eval_seconds:.1f} s = {100 * s.eval_seconds / s.train_seconds:.1f}% of training")
    if 1 in walls and len(walls) > 1:
        for jobs, wall in walls.items():
            if jobs != 1:
                print(f"speed-up of jobs {jobs} over jobs 1: {walls[1] / wall:.2f}x")


if __name__ == "__main__":
    main()
