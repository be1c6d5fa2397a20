"""The devices a run can ask for (the CLI offers exactly these), which one a request resolves to, and the
precision a forward pass runs in there.  Training, evaluation and feature extraction all ask here, so the
data layer needs nothing of training's."""

from __future__ import annotations

import contextlib

import torch

from avbench.profiles import PRECISIONS
from avbench.validation import ValidationError, check_choice

#: ``auto`` picks CUDA when torch sees a GPU, else the CPU.
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is an error, not a silent fallback."""
    check_choice(device, "device", "avbench", DEVICES)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValidationError("The 'device' parameter is 'cuda' but torch sees no CUDA device "
                              f"(torch {torch.__version__}). Use --device cpu or auto.")
    return torch.device(device)


DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}  # of the profiles.PRECISIONS below fp32


def autocast(device: torch.device, precision: str):
    """The context a forward pass runs in: nothing for ``fp32``, else CUDA autocast to ``precision``.

    Only CUDA: on the CPUs avbench was measured on, bf16 has no hardware support and would only
    slow training down (benchmarks/README.md), so a lower precision there is an error, not a
    silent no-op.
    """
    check_choice(precision, "precision", "avbench", PRECISIONS)
    device = torch.device(device)
    if precision == "fp32":
        return contextlib.nullcontext()
    if device.type != "cuda":
        raise ValidationError(f"The 'precision' parameter is {precision!r}, which avbench supports on CUDA only "
                              f"(autocast); this run is on {device.type}. Use --precision fp32.")
    return torch.autocast("cuda", dtype=DTYPES[precision])

