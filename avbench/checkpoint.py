"""Reading PyTorch files safely: weights and training states only, never arbitrary objects.

``torch.load`` unpickles; a checkpoint from a shared directory or a download could run code
that way, so everything avbench reads goes through :func:`load_checkpoint` with
``weights_only=True`` (tensors, numbers, strings, lists and dicts; the training state stores
its numpy RNG state as plain ints for that reason).  A truncated or corrupt file, e.g. from a
full disk, gets a message naming it and saying how to recover instead of a traceback.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from avbench.validation import DataError


def load_checkpoint(path: Path) -> Any:
    """The content of a ``.pt`` file written by avbench, on the CPU.

    Raises:
        DataError: The file is truncated, corrupt or holds something other than weights; the
            message says that deleting it makes the next run recompute it.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, AttributeError, KeyError,
            IndexError, TypeError) as exc:
        text = str(exc).strip()
        first = text.splitlines()[0].split(". ")[0][:120] if text else type(exc).__name__
        raise DataError(f"{path}: cannot be read as an avbench checkpoint ({first}); it is truncated "
                        "or corrupt. Delete it and run the same command again to recompute it.") from None
