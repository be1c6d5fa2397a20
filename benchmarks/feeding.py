"""Feeding the model: data-wait share of the training loop, bucket vs random batches, anonymous RSS.

Trains one epoch of the ``quick`` AuxFormer per setting on a CREMA-D-sized
store through ``avbench.training.fit`` (the code ``avbench run`` uses), and
prints what each epoch recorded: training seconds, seconds the loop waited
for a batch, and the peak anonymous RSS of the process (sampled every 0.1 s
from ``/proc/self/status``; pages of the memory-mapped store are file-backed
and not counted).  Settings, in one process so their ratios share the load:

* ``random``: the paper's random batches, made ahead by the background thread (the default);
* ``random, no prefetch``: the same batches made in the training loop's thread;
* ``bucket``: ``--batching bucket``.

Targets (issue 12): data wait under 5% of the training time (random batches,
prefetching on), anonymous RSS under 2 GiB, bucket batches at least 1.5x
cheaper per epoch than random ones.

    python benchmarks/feeding.py --generate /tmp/crema-sized     # ~4.6 GB, deleted afterwards
    python benchmarks/feeding.py --store /data/crema-d-store      # a store you already have
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

from avbench import training
from avbench.batching import batches
from avbench.data import load_splits
from avbench.models import create_model, get_model_meta
from avbench.normalization import fit_normalizer
from avbench.profiles import get_profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crema_sized import add_arguments, store_from  # noqa: E402


class AnonPeak:
    """Peak of ``RssAnon`` (kB in /proc/self/status) sampled by a thread."""

    def __init__(self, every: float = 0.1):
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    @staticmethod
    def now_kib() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
        return 0

    def _run(self, every: float) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, self.now_kib())
            time.sleep(every)

    def __enter__(self) -> "AnonPeak":
        self.peak_kib = self.now_kib()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def epoch(store, parts, norm, *, batching: str, prefetch: int, seed: int = 0) -> dict:
    profile = get_profile("quick").replace(epochs=1, batching=batching)
    torch.manual_seed(seed)
    model = create_model("auxformer", num_classes=len(store.label_names), audio_dim=store.audio_dim,
                         visual_dim=store.visual_dim, **profile.model_config(get_model_meta("auxformer")))
    original = training.batches
    training.batches = functools.partial(batches, prefetch=prefetch)
    try:
        with AnonPeak() as anon:
            result = training.fit(model, store, parts["train"], parts["dev"], regime="standard", profile=profile,
                                  seed=seed, device=torch.device("cpu"), progress=False, norm=norm)
    finally:
        training.batches = original
    h = result.history[0]
    return {"train_s": h["train_seconds"], "wait_s": h["data_wait_seconds"], "anon_gib": anon.peak_kib / 2 ** 20}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    args = p.parse_args()
    with store_from(args) as store:
        report(store)


def report(store) -> None:
    size = sum(f.stat().st_size for f in Path(store.path).glob("*.bin")) / 1e9
    secs = store.manifest["audio_frames"].to_numpy() / store.audio_rate
    print(f"store: {len(store)} clips, {size:.2f} GB of features, visual {store.visual_dim}-d, clip length "
          f"{secs.min():.1f}-{secs.max():.1f} s (median {np.median(secs):.1f}); torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f} at start")
    parts = load_splits(store, 1)[0].indices(store.speakers)
    start = time.perf_counter()
    norm = fit_normalizer(store, parts["train"])
    print(f"z-normalisation statistics of {len(parts['train'])} training clips: {time.perf_counter() - start:.0f} s")
    res = {}
    for name, batching, prefetch in (("random", "random", 2), ("random, no prefetch", "random", 0),
                                     ("bucket", "bucket", 2)):
        res[name] = r = epoch(store, parts, norm, batching=batching, prefetch=prefetch)
        print(f"{name:>20}: epoch {r['train_s']:.1f} s, waited for data {r['wait_s']:.2f} s "
              f"({r['wait_s'] / r['train_s']:.1%}), peak anonymous RSS {r['anon_gib']:.2f} GiB")
    share = res["random"]["wait_s"] / res["random"]["train_s"]
    ratio = res["random"]["train_s"] / res["bucket"]["train_s"]
    anon = max(r["anon_gib"] for r in res.values())
    print(f"data wait, random batches with prefetching: {share:.1%} of the epoch (target < 5%: "
          f"{'met' if share < 0.05 else 'MISSED'})")
    print(f"peak anonymous RSS: {anon:.2f} GiB (target < 2 GiB: {'met' if anon < 2 else 'MISSED'})")
    print(f"bucket vs random, seconds per epoch: {ratio:.2f}x cheaper (target >= 1.5x: "
          f"{'met' if ratio >= 1.5 else 'MISSED'})")
    print(f"prefetching: the loop waited {res['random, no prefetch']['wait_s']:.1f} s without it, "
          f"{res['random']['wait_s']:.1f} s with it")


if __name__ == "__main__":
    main()
