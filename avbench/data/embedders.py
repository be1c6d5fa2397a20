"""Visual embedders: what each 224x224 face crop becomes.  Registered in ``EXTRACTORS``.

* ``vggface`` (default): fc6 of VGG-Face (:mod:`avbench.data.vggface`), weights from the user.
* ``pixels``: the crop in grey, downsampled to ``side x side`` and scaled to
  [-1, 1].  Needs no weights, runs anywhere in milliseconds, and is NOT the
  paper's feature: it exists so that the whole pipeline can be tried, tested
  and run in CI without a 550 MB weights file.

A third-party embedder joins through the ``avbench.extractors`` entry-point
group: a class with ``name``, ``modality = "visual"``, ``dim``, ``settings()``
and ``__call__(crops: (n, 224, 224, 3) uint8) -> (n, dim)``, constructed with
the keyword options of :func:`make_embedder`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from avbench.data.vggface import VGGFaceEmbedder
from avbench.registry import EXTRACTORS


class PixelEmbedder:
    """Grey face crop at ``side x side`` in [-1, 1] (``side**2`` values); not the paper's feature."""

    name = "pixels"
    modality = "visual"
    paper = False

    def __init__(self, side: int = 16, **_ignored):
        self.side = int(side)
        self.dim = self.side ** 2

    def settings(self) -> dict:
        return {"embedder": "pixels", "side": self.side, "dim": self.dim,
                "normalisation": "grey (mean of RGB) / 127.5 - 1, area-downsampled", "paper_features": False}

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        if not len(crops):
            return np.zeros((0, self.dim), np.float32)
        x = torch.as_tensor(crops, dtype=torch.float32).mean(-1)[:, None]
        x = F.interpolate(x, size=(self.side, self.side), mode="area")
        return (x.flatten(1) / 127.5 - 1.0).numpy().astype(np.float32)


class ImportedVisual:
    """``--visual-embedder import``: per-clip visual frames the user extracted elsewhere.

    Some visual features need their own code (the released AuxFormer's 50-d
    EMOCA codes need EMOCA), so this embedder reads ``<clip_id>.visual.npy``
    (``frames x dim``, the layout of ``avbench data import``) from
    ``--visual-features DIR`` while avbench extracts the audio itself.  No
    video is decoded and no face detected; ``rate`` (``--visual-rate``) is the
    frames' rate.  A clip whose file is missing, unreadable, of another
    width or not finite fails alone (``failed.csv``).
    """

    name = "import"
    modality = "visual"
    paper = False
    reads_video = False

    def __init__(self, features: str | None = None, rate: float = 30.0, **_ignored):
        from avbench.validation import ValidationError, check_float

        if features is None or not Path(features).is_dir():
            raise ValidationError(f"The '--visual-features' option must name a folder of <clip_id>.visual.npy "
                                  f"arrays for --visual-embedder import. Got {features!r} instead.")
        self.folder = Path(features)
        self.rate = check_float(rate, "visual_rate", "--visual-rate", low=0, low_open=True)
        first = next(iter(sorted(self.folder.glob("*.visual.npy"))), None)
        if first is None:
            raise ValidationError(f"{self.folder}: holds no <clip_id>.visual.npy file (--visual-features).")
        self.dim = int(self.load_file(first).shape[1])

    def settings(self) -> dict:
        return {"embedder": "import", "folder": str(self.folder.resolve()), "dim": self.dim, "rate": self.rate,
                "paper_features": False}

    @staticmethod
    def load_file(path: Path) -> np.ndarray:
        from avbench.data.media import MediaError

        try:
            a = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise MediaError(path, "missing", "imported visual features are missing.") from None
        except (OSError, ValueError, EOFError) as exc:
            raise MediaError(path, "unreadable", f"cannot be read as a .npy array ({exc}).") from None
        if a.ndim != 2 or not len(a) or not np.issubdtype(a.dtype, np.number):
            raise MediaError(path, "unreadable", f"expected a (frames, dim) numeric array. Got shape {a.shape}, "
                             f"dtype {a.dtype} instead.")
        if not np.isfinite(a).all():
            raise MediaError(path, "unreadable", "contains NaN or inf.")
        return a.astype(np.float32)

    def load(self, clip_id: str) -> np.ndarray:
        """The clip's frames, ``(frames, dim)``; raises MediaError naming the file."""
        from avbench.data.media import MediaError
        from avbench.data.store import feature_file

        path = feature_file(self.folder, clip_id, "visual")
        a = self.load_file(path)
        if a.shape[1] != self.dim:
            raise MediaError(path, "unreadable", f"has {a.shape[1]} columns; the other clips have {self.dim}.")
        return a


EXTRACTORS.register("pixels", PixelEmbedder)
EXTRACTORS.register("import", ImportedVisual)
EXTRACTORS.register("vggface", VGGFaceEmbedder)


def make_extractor(modality: str, name: str, options: dict[str, tuple[str, object, bool]],
                   common: dict | None = None):
    """The registered extractor ``name`` of ``modality``, given the keyword options its constructor takes.

    Args:
        modality: ``audio`` or ``visual``; an extractor of the other modality is refused.
        name: Registered name (``--audio-extractor`` / ``--visual-embedder``).
        options: keyword -> (command-line option, value, given by the user).  An option the
            extractor does not take is left out, unless the user gave it: then it is refused
            rather than silently ignored (``--audio-model`` with ``compare``).
        common: Keywords passed to every extractor that takes them (device, precision, batch size).
    """
    import inspect

    from avbench.validation import ValidationError

    flag = {"audio": "--audio-extractor", "visual": "--visual-embedder"}[modality]
    cls = EXTRACTORS.get(name)
    if getattr(cls, "modality", None) != modality:
        article = "an" if modality == "audio" else "a"
        raise ValidationError(f"The '{flag}' option must name {article} {modality} extractor. {name!r} is a "
                              f"{getattr(cls, 'modality', 'unknown')} extractor.")
    params = inspect.signature(cls).parameters
    takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in (common or {}).items() if takes_all or k in params}
    for keyword, (option, value, given) in options.items():
        if takes_all or keyword in params:
            kwargs[keyword] = value
        elif given:
            raise ValidationError(f"The '{option}' option does not apply to the {name!r} {modality} extractor "
                                  f"({flag} {name}).")
    return cls(**kwargs)
