"""A CREMA-D-sized synthetic feature store for the benchmarks: generated on demand, deleted after.

CREMA-D has 7,442 clips of 91 actors; 82 synthetic clips per speaker give 7,462,
with 130-d audio at 62.5 frames/s and 4096-d visual at 30 frames/s in float16,
about 4.6 GB on disk.  The synthetic generator's clip lengths (1.3-5 s) imitate
CREMA-D's spread.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import time
from pathlib import Path

from avbench.data import FeatureStore, generate_synthetic

CREMA_D = dict(n_speakers=91, clips_per_speaker=82, audio_dim=130, visual_dim=4096, dtype="float16")
NEEDS_GIB = 12  # the store plus headroom


def add_arguments(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--store", type=Path, help="an existing feature store")
    where.add_argument("--generate", type=Path, help="write a CREMA-D-sized synthetic store here, delete it after")
    p.add_argument("--keep", action="store_true", help="keep the generated store")
    p.add_argument("--clips-per-speaker", type=int, default=CREMA_D["clips_per_speaker"],
                   help="a smaller generated store (same lengths and widths), when time or disk is short")


@contextlib.contextmanager
def store_from(args):
    """The store named by ``--store``, or one generated at ``--generate`` and removed on exit."""
    if args.store:
        yield FeatureStore.open(args.store)
        return
    free = shutil.disk_usage(args.generate.parent).free / 2 ** 30
    if free < NEEDS_GIB:
        raise SystemExit(f"{args.generate.parent} has {free:.1f} GiB free; the store needs about 4.6 GB")
    start = time.perf_counter()
    try:
        store = generate_synthetic(args.generate, **(CREMA_D | {"clips_per_speaker": args.clips_per_speaker}))
        print(f"generated {len(store)} clips in {time.perf_counter() - start:.0f} s at {store.path}")
        yield store
    finally:
        if not args.keep:
            shutil.rmtree(args.generate, ignore_errors=True)
            print(f"deleted {args.generate}")
