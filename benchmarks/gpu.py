"""Seconds per epoch of the ``paper`` profile on a CUDA GPU, per precision, on a CREMA-D-sized store.

Trains one epoch of the paper's AuxFormer (7.05 M parameters, batch 32, all
frames) through ``avbench.training.fit`` with ``--precision`` fp32, bf16 and
fp16 (autocast), random batches and bucket batches, and prints the training
seconds, the seconds the loop waited for data, and peak GPU memory.  Without a
GPU it says so and exits 0: it has not been run by avbench's authors, whose
machine has none (benchmarks/README.md).

    python benchmarks/gpu.py --generate /tmp/crema-sized
    python benchmarks/gpu.py --store /data/crema-d-store --precision bf16
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from avbench.data import load_splits
from avbench.models import create_model, get_model_meta
from avbench.normalization import fit_normalizer
from avbench.profiles import get_profile
from avbench.profiles import PRECISIONS
from avbench.training import fit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crema_sized import add_arguments, store_from  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.add_argument("--precision", action="append", choices=list(PRECISIONS),
                   help="repeat for several; default: all three")
    p.add_argument("--batching", action="append", choices=["random", "bucket"], help="default: both")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print(f"SKIPPED: torch {torch.__version__} sees no CUDA device; this benchmark needs a GPU.")
        return
    device = torch.device("cuda")
    print(f"GPU: {torch.cuda.get_device_name(device)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    with store_from(args) as store:
        parts = load_splits(store, 1)[0].indices(store.speakers)
        norm = fit_normalizer(store, parts["train"])
        for batching in args.batching or ["random", "bucket"]:
            for precision in args.precision or list(PRECISIONS):
                profile = get_profile("paper").replace(epochs=1, batching=batching, precision=precision)
                torch.manual_seed(0)
                model = create_model("auxformer", num_classes=len(store.label_names), audio_dim=store.audio_dim,
                                     visual_dim=store.visual_dim, **profile.model_config(get_model_meta("auxformer")))
                torch.cuda.reset_peak_memory_stats(device)
                h = fit(model, store, parts["train"], parts["dev"], regime="standard", profile=profile, seed=0,
                        device=device, progress=False, norm=norm).history[0]
                print(f"{batching:>6} {precision}: {h['train_seconds']:.1f} s per epoch "
                      f"({len(parts['train'])} clips), waited for data {h['data_wait_seconds']:.1f} s, "
                      f"peak GPU memory {torch.cuda.max_memory_allocated(device) / 2 ** 30:.2f} GiB")


if __name__ == "__main__":
    main()
