"""Built-in corpora and corpus lookup (CREMA-D's label table lives in :mod:`avbench.data.crema_d`).

Registering here (rather than in each caller) lets the CLI, protocols and
plugins name corpora uniformly: ``open_corpus("synthetic")`` or a store path.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from avbench.data.store import FeatureStore
from avbench.data.synthetic import default_synthetic
from avbench.registry import CORPORA
from avbench.validation import ValidationError

log = logging.getLogger(__name__)

CORPORA.register("synthetic", default_synthetic)


def open_corpus(spec: str | os.PathLike, **synthetic_overrides) -> FeatureStore:
    """Opens a registered corpus by name, or a feature store by path.

    Args:
        spec: A name in :data:`avbench.registry.CORPORA` (e.g. ``"synthetic"``)
            or a directory containing ``store.json``.
        **synthetic_overrides: Passed to the registered corpus factory (e.g.
            ``seed=1, visual_dim=4096`` for ``"synthetic"``); not allowed with
            a path, which names fixed data.
    """
    if isinstance(spec, str) and spec in CORPORA:
        return CORPORA.get(spec)(**synthetic_overrides)
    if (Path(spec) / "store.json").is_file():
        if synthetic_overrides:
            raise ValidationError(f"The 'corpus' parameter names the feature store {spec}, which is fixed "
                                  f"data; options {', '.join(synthetic_overrides)} apply to registered "
                                  "corpora only. Drop them.")
        return FeatureStore.open(spec)
    missing = "not found" if not Path(spec).exists() else "no store.json there"
    raise ValidationError(f"The 'corpus' parameter of open_corpus must be a registered corpus name "
                          f"(Available: {', '.join(CORPORA.names())}) or a path to a feature store "
                          f"directory (one containing store.json). Got {str(spec)!r} ({missing}) instead.",
                          param="corpus", owner="open_corpus")

