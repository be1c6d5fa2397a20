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


EXTRACTORS.register("pixels", PixelEmbedder)
EXTRACTORS.register("vggface", VGGFaceEmbedder)


def make_embedder(name: str, **options):
    """An embedder by registered name, given the options its constructor takes (others are not passed)."""
    import inspect

    cls = EXTRACTORS.get(name)
    if getattr(cls, "modality", None) != "visual":
        from avbench.validation import ValidationError

        raise ValidationError(f"The '--visual-embedder' option must name a visual extractor. {name!r} is "
                              f"a {getattr(cls, 'modality', 'unknown')} extractor.")
    params = inspect.signature(cls).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        options = {k: v for k, v in options.items() if k in params}
    return cls(**options)
