"""Runs every speed and memory benchmark of issue 12 and prints their figures and targets.

One benchmark at a time (they would distort each other on 2 cores).  The
paper-size training steps take a few minutes and up to 16 GiB (the reference
at 300/150 frames); the feeding benchmark generates a 4.6 GB CREMA-D-sized
store under ``--scratch`` and deletes it; the GPU benchmark prints SKIPPED
without a GPU.

    python benchmarks/run_all.py                      # everything
    python benchmarks/run_all.py --skip feeding gpu   # the training steps only
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def commands(scratch: Path) -> dict[str, list[list[str]]]:
    return {
        "train-step": [["train_step.py", "--settings", "reference,avbench,avbench-lean,avbench-sdpa"],
                       ["train_step.py", "--settings", "reference,avbench,avbench-lean", "--audio-frames", "300",
                        "--visual-frames", "150"]],
        "quick-step": [["train_step.py", "--settings", "avbench,avbench-sdpa", "--profile", "quick",
                        "--audio-frames", "40", "--visual-frames", "38", "--visual-dim", "64", "--steps", "20"]],
        "feeding": [["feeding.py", "--generate", str(scratch / "avbench-crema-sized")]],
        "gpu": [["gpu.py", "--generate", str(scratch / "avbench-crema-sized-gpu")]],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scratch", type=Path, default=Path("/tmp"), help="where generated stores go (and are deleted)")
    p.add_argument("--skip", nargs="*", default=[], choices=list(commands(Path("."))))
    args = p.parse_args()
    failed = []
    for name, runs in commands(args.scratch).items():
        if name in args.skip:
            continue
        for argv in runs:
            print(f"\n$ python benchmarks/{' '.join(argv)}", flush=True)
            if subprocess.run([sys.executable, str(HERE / argv[0]), *argv[1:]]).returncode:
                failed.append(" ".join(argv))
    if failed:
        raise SystemExit("failed: " + "; ".join(failed))


if __name__ == "__main__":
    main()
