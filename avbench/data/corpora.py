"""Built-in corpora, corpus lookup, and CREMA-D's label table.

Registering here (rather than in each caller) lets the CLI, protocols and
plugins name corpora uniformly: ``open_corpus("synthetic")`` or a store path.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from avbench.data.store import FeatureStore
from avbench.data.synthetic import default_synthetic
from avbench.registry import CORPORA
from avbench.validation import ValidationError

log = logging.getLogger(__name__)

CORPORA.register("synthetic", default_synthetic)

CREMA_D_LABELS = ("anger", "disgust", "fear", "happiness", "sadness", "neutral")
CREMA_D_VOTES = {"A": "anger", "D": "disgust", "F": "fear", "H": "happiness", "S": "sadness", "N": "neutral"}
CREMA_D_INTENDED = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happiness",
                    "SAD": "sadness", "NEU": "neutral"}


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


def crema_d_labels(summary_table_csv: str | os.PathLike) -> pd.DataFrame:
    """Perceived audiovisual labels of CREMA-D, as the paper uses them.

    Reads ``processedResults/summaryTable.csv`` of the CREMA-D distribution and
    keeps the MultiModal (audiovisual) vote.  Ties (written ``N:S``) have no
    single label and are dropped, with a warning saying how many.

    Returns:
        One row per kept clip: ``clip_id, speaker, label, intended_label,
        sentence`` (file names are ``ACTOR_SENTENCE_EMOTION_LEVEL``).
    """
    path = Path(summary_table_csv)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{path}: cannot be read as CSV ({exc}).") from None
    missing = [c for c in ("FileName", "MultiModalVote") if c not in table.columns]
    if missing:
        raise ValidationError(f"{path}: missing columns {', '.join(missing)}; expected CREMA-D's "
                              "summaryTable.csv (FileName, VoiceVote, ..., MultiModalVote, MultiModalLevel).")
    names = table["FileName"].str.strip()
    votes = table["MultiModalVote"].str.strip()
    tie = votes.str.contains(":")
    if tie.any():
        log.warning("%s: dropped %d of %d clips whose audiovisual vote is a tie.", path, tie.sum(), len(tie))
    names, votes = names[~tie], votes[~tie]
    bad = ~votes.isin(list(CREMA_D_VOTES))
    if bad.any():
        raise ValidationError(f"{path}: clip {names[bad].iloc[0]!r} has MultiModalVote "
                              f"{votes[bad].iloc[0]!r}; expected one of {', '.join(CREMA_D_VOTES)} "
                              "or a tie such as 'N:S'.")
    parts = names.str.extract(r"^([^_]+)_([^_]+)_([^_]+)")
    bad = ~parts[2].isin(list(CREMA_D_INTENDED))
    if bad.any():
        raise ValidationError(f"{path}: clip {names[bad].iloc[0]!r} is not named "
                              "ACTOR_SENTENCE_EMOTION_LEVEL (e.g. 1001_DFA_ANG_XX) with EMOTION in "
                              f"{', '.join(CREMA_D_INTENDED)}.")
    return pd.DataFrame({"clip_id": names, "speaker": parts[0], "label": votes.map(CREMA_D_VOTES),
                         "intended_label": parts[2].map(CREMA_D_INTENDED), "sentence": parts[1]}
                        ).reset_index(drop=True)
