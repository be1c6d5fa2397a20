"""Per-trial z-normalisation of features, with statistics of the training partition only.

The paper z-normalises its features (Sec. 4.2.2) and the authors' released
code (``utils/dataset.py``) computes the mean and standard deviation of every
feature dimension from the frames of the *training* partition, then applies
them to train, dev and test alike.  Statistics from the whole corpus would
leak dev and test clips into training, so here they are computed per trial
from that trial's training rows, before any test condition or training regime
zeroes frames: a zeroed frame is then a true zero in the normalised space, as
in the paper.  Frames a store marks as missing (e.g. no face found) are left
out of the statistics and stay zero.  A store whose features are already
normalised says so in ``store.json`` (``normalized: true``) and is read as is.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avbench.data.store import MODALITIES
from avbench.validation import DataError

EPS = 1e-6  # added to the standard deviation, as the released code does


@dataclass(frozen=True)
class Normalizer:
    """Mean and standard deviation per feature dimension of each modality.

    Attributes:
        mean, std: ``{modality: float64 array (dim,)}``.
        frames: Frames each statistic was computed from.
    """

    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]
    frames: dict[str, int]

    def apply(self, modality: str, x: np.ndarray, missing: np.ndarray | None = None) -> np.ndarray:
        """``(x - mean) / (std + 1e-6)`` as float32; frames marked missing stay exactly zero.

        A modality without statistics (:meth:`only` left it out) passes unchanged, as float32.
        """
        if modality not in self.mean:
            out = np.array(x, dtype=np.float32)
        else:
            out = ((x - self.mean[modality]) / (self.std[modality] + EPS)).astype(np.float32)
        if missing is not None:
            out[missing] = 0.0
        return out

    def only(self, modalities: tuple[str, ...]) -> "Normalizer":
        """The same statistics for ``modalities`` alone; the other streams are read as stored.

        Weights trained elsewhere (``avbench run --weights``) get the streams normalised that their
        training normalised, and no other (:mod:`avbench.pretrained`).
        """
        keep = [m for m in MODALITIES if m in modalities]
        return Normalizer({m: self.mean[m] for m in keep}, {m: self.std[m] for m in keep},
                          {m: self.frames[m] for m in keep})

    def digest(self) -> str:
        """A short sha256 of the statistics, recorded with every unit that used them."""
        h = hashlib.sha256()
        for m in (m for m in MODALITIES if m in self.mean):
            h.update(np.ascontiguousarray(self.mean[m], dtype="<f8").tobytes())
            h.update(np.ascontiguousarray(self.std[m], dtype="<f8").tobytes())
        return h.hexdigest()[:16]

    def save(self, path: Path) -> None:
        from avbench.results import write_npz

        write_npz(Path(path), **{f"{m}_{k}": getattr(self, k)[m] for m in MODALITIES for k in ("mean", "std")},
                  **{f"{m}_frames": np.int64(self.frames[m]) for m in MODALITIES})

    @classmethod
    def load(cls, path: Path) -> "Normalizer":
        try:
            with np.load(Path(path), allow_pickle=False) as z:
                return cls({m: z[f"{m}_mean"] for m in MODALITIES}, {m: z[f"{m}_std"] for m in MODALITIES},
                           {m: int(z[f"{m}_frames"]) for m in MODALITIES})
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: cannot be read as normalisation statistics ({exc}); the file is truncated "
                            "or corrupt. Delete it and run the same command again to recompute it.") from None

    def summary(self) -> dict:
        """What a unit record keeps: provenance and size, not the arrays (they sit beside it)."""
        return {"source": "train partition", "sha256": self.digest(), "frames": dict(self.frames),
                "eps": EPS, "mean_abs_mean": {m: float(np.abs(v).mean()) for m, v in self.mean.items()},
                "mean_std": {m: float(v.mean()) for m, v in self.std.items()}}


def fit_normalizer(store, rows: np.ndarray) -> Normalizer:
    """Statistics over every frame of ``rows`` (the training partition), missing frames excluded.

    Sums run in float64 clip by clip from the memory-mapped store, so a
    4096-d corpus is never loaded whole.  The standard deviation is the
    population one, as the released code computes it.
    """
    mean, std, frames = {}, {}, {}
    for m in MODALITIES:
        dim = store.audio_dim if m == "audio" else store.visual_dim
        s, ss, n = np.zeros(dim), np.zeros(dim), 0
        read = store.audio if m == "audio" else store.visual
        for r in np.asarray(rows):
            x = np.asarray(read(int(r)), dtype=np.float64)
            gone = store.missing(m, int(r))
            if gone is not None:
                x = x[~gone]
            s += x.sum(0)
            ss += np.square(x).sum(0)
            n += len(x)
        mu = s / max(n, 1)
        mean[m], std[m], frames[m] = mu, np.sqrt(np.maximum(ss / max(n, 1) - mu ** 2, 0.0)), n
    return Normalizer(mean, std, frames)
