"""Where a result was computed: versions, git revision, machine and device, recorded with every
unit (``train.json``), and the one-line description of a machine that reports print."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import avbench


def cpu_model() -> str:
    """The CPU's marketing name (Table 5's timings mean little without it)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(device: torch.device | None = None) -> dict[str, Any]:
    """Versions, git revision, machine and the device used, stored with every record."""
    rev = "unknown"
    try:
        src = Path(avbench.__file__).resolve().parent.parent
        rev = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        pass
    cuda = torch.cuda.get_device_name(device if device is not None and device.type == "cuda" else 0) \
        if torch.cuda.is_available() else None
    return {"avbench": avbench.__version__, "git_revision": rev, "python": sys.version.split()[0],
            "torch": torch.__version__, "numpy": np.__version__, "pandas": pd.__version__,
            "machine": {"platform": platform.platform(), "processor": cpu_model(), "cpu_count": os.cpu_count(),
                        "cpu_threads": torch.get_num_threads(), "cuda": cuda,
                        "device": str(device) if device is not None else None}}


def describe_machine(machine: dict[str, Any]) -> str:
    """One line for a :func:`provenance` ``machine`` record: ``GPU NVIDIA H100; AMD EPYC ..., 16 CPU threads; Linux-...``."""
    if not machine:
        return "unknown machine"
    parts = []
    if machine.get("cuda") and str(machine.get("device") or "cuda").startswith("cuda"):  # trained on it
        parts.append(f"GPU {machine['cuda']}")
    cpu = machine.get("processor") or "CPU"
    threads = machine.get("cpu_threads")
    parts.append(f"{cpu}" + (f", {threads} CPU threads" if threads else ""))
    if machine.get("platform"):
        parts.append(str(machine["platform"]))
    return "; ".join(parts)
