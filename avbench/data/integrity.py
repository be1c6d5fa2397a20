"""Never train on corrupt or non-finite features, at the cost of one full read per change.

A flipped byte in ``visual.bin`` trains without a word unless someone rehashes the files,
and results would then carry the checksum ``store.json`` claims rather than that of the
bytes read.  So before a run the store's data files are checked against the last full
verification: their size, modification and change times and inode, recorded in a stamp
under :func:`avbench.paths.data_home` (the store itself may be read-only and shared).  When
any of these differ, or no stamp exists, every file is rehashed and every feature value is
checked to be finite, in one pass; only a store that passes is stamped and used.  A run
therefore reads features whose bytes are those ``store.json`` describes, and the checksum
recorded with every unit is the identity of the data actually trained on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avbench.atomic import atomic_path
from avbench.paths import data_home
from avbench.validation import DataError

if TYPE_CHECKING:
    from avbench.data.store import FeatureStore

log = logging.getLogger(__name__)
BLOCK_BYTES = 16 << 20  # read size of the full check: bounded memory for any feature width


def file_state(path: Path) -> list[int]:
    """What changes whenever a file's bytes may have: size, mtime, ctime (which no tool can set
    back), inode and device (a copy or a replacement)."""
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def _stamp_path(store: "FeatureStore") -> Path:
    key = hashlib.sha256(str(Path(store.path).resolve()).encode()).hexdigest()[:16]
    return data_home() / "verified" / f"{store.name}-{key}.json"


def _current(store: "FeatureStore") -> dict:
    return {"checksum": store.checksum,
            "files": {name: file_state(Path(store.path) / name) for name in sorted(store.meta["checksums"])}}


def ensure_verified(store: "FeatureStore") -> bool:
    """Checks ``store`` in full unless nothing changed since its last full check; returns whether
    it checked in full.

    Raises:
        DataError: A data file differs from the sha256 in ``store.json``, or a feature value
            is NaN or infinite (naming the store, clip, frame and column).
    """
    current = _current(store)
    try:
        if json.loads(_stamp_path(store).read_text()) == current:
            return False
    except (OSError, ValueError):  # no stamp yet, or no cache to keep one in: check in full
        pass
    verify_store(store)
    record_verified(store, current)
    return True


def record_verified(store: "FeatureStore", current: dict | None = None) -> None:
    """Stamps ``store`` as fully verified in its present state (a writer that has just hashed
    and checked every clip calls this, sparing the first run a second full read)."""
    try:
        with atomic_path(_stamp_path(store)) as tmp:
            tmp.write_text(json.dumps(current or _current(store)))
    except OSError as exc:  # an unwritable cache only costs a full check on every run
        log.warning("Could not record the verification of %s (%s); it will be checked in full again.",
                    store.path, exc)


def verify_store(store: "FeatureStore") -> None:
    """Rehashes every data file and checks every feature value for NaN and inf, in one pass."""
    problems = []
    for name, expected in sorted(store.meta["checksums"].items()):
        modality = name[:-4] if name.endswith(".bin") and name[:-4] in ("audio", "visual") else None
        found, nonfinite = _scan(store, name, modality)
        if found != expected:
            problems.append(f"{Path(store.path) / name}: sha256 {found[:16]}... does not match the "
                            f"{expected[:16]}... recorded in store.json; the file was modified or corrupted. "
                            "Re-create the store (or restore the file).")
        if nonfinite:
            problems.append(nonfinite)
    if problems:
        raise DataError(" ".join(problems))


def _scan(store: "FeatureStore", name: str, modality: str | None) -> tuple[str, str | None]:
    """sha256 of one file and, for a feature file, the first non-finite value described."""
    h = hashlib.sha256()
    path = Path(store.path) / name
    if modality is None:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(BLOCK_BYTES), b""):
                h.update(block)
        return h.hexdigest(), None
    data = store.frames(modality)
    rows = max(1, BLOCK_BYTES // max(1, data.shape[1] * data.itemsize))
    first_bad = None
    for start in range(0, len(data), rows):
        block = np.asarray(data[start:start + rows])
        h.update(block.tobytes())
        if first_bad is None:
            finite = np.isfinite(block)
            if not finite.all():
                r, c = np.argwhere(~finite)[0]
                first_bad = (start + int(r), int(c), float(block[r, c]))
    return h.hexdigest(), None if first_bad is None else _describe(store, modality, *first_bad)


def _describe(store: "FeatureStore", modality: str, row: int, column: int, value: float) -> str:
    offsets = store.offsets(modality)
    clip = int(np.searchsorted(offsets, row, side="right") - 1)
    clip_id = store.manifest["clip_id"].iloc[clip]
    return (f"Feature store {store.name!r} at {store.path}: clip {clip_id!r} has {value} in its {modality} "
            f"features at frame {row - int(offsets[clip])}, column {column}. avbench does not train on NaN or "
            "infinite features; clean the features and re-create the store.")
