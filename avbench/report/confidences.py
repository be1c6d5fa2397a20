"""Per-clip confidences of a run's evaluations with full input and with one modality clipped, as one table.

A run keeps each ``ok`` evaluation's class probabilities beside its record
(``evals/<key>.npz``, see :mod:`avbench.unitdir`).  A reliability diagram needs them clip by clip,
pooled over trials, which no row of ``results.csv`` holds; a report saves what it needs of them to
``data/confidences.csv`` (the top probability and whether the prediction was right, per clip), so a
report rebuilt from its ``data/`` folder, without the unit directories, still draws the diagram.
Only the conditions of :data:`~avbench.report.rundata.CELL_CONDITIONS` (a few rows per test clip and
unit, not every masking level) of the units the diagram can show (default variants and given weights, not
the ablations' variants) are kept, with confidences to 6 decimals (the diagram's bins need no more).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from avbench.report import saved
from avbench.results import PRETRAINED
from avbench.unitdir import UnitDir
from avbench.validation import DataError

#: The file a report's ``data/`` folder keeps the confidences in.
FILE = "confidences.csv"
#: What names one evaluation (as the tidy table names the unit and condition).
KEY = ["corpus", "model", "variant", "regime", "seed", "condition"]
#: Per clip: its id, the top class probability and whether the predicted class was the true one.
VALUES = ["clip_id", "confidence", "correct"]
COLUMNS = KEY + VALUES


def from_units(root: Path, units: list[dict[str, Any]], conditions: tuple[str, ...]) -> pd.DataFrame:
    """One row per clip of each unit's evaluations under ``conditions``, read from the unit
    directories under ``root`` (each unit's ``dir``, as :func:`avbench.report.rundata.load_run` records
    it); an evaluation without probabilities (scored before avbench kept them) is left out."""
    parts = []
    for unit in units:
        if unit.get("variant") != "default" and unit.get("regime") != PRETRAINED:
            continue  # an ablation's variant: no artifact draws its reliability
        d = UnitDir(root, None, path=Path(root) / unit.get("dir", ""))
        for condition in conditions:
            if not (d.eval_file(condition).exists() and d.probability_file(condition).exists()):
                continue
            predictions = d.read_eval(condition).predictions or {}
            ids, p = d.read_probabilities(condition)
            ids = ids.astype(str)
            if ids.tolist() != list(predictions.get("clip_id", [])):
                raise DataError(f"{d.probability_file(condition)}: its clips are not those of the record beside it; "
                                "delete both and rerun the run's command to score the condition again.")
            correct = np.asarray(predictions["pred"]) == np.asarray(predictions["label"])
            parts.append(pd.DataFrame({**{k: unit.get(k) for k in KEY[:-1]}, "condition": condition, "clip_id": ids,
                                       "confidence": p.max(axis=1).astype(float).round(6), "correct": correct}))
    return _typed(pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS))


def read(folder: Path) -> pd.DataFrame:
    """The confidences a report saved in ``folder`` (its ``data/``); empty when it saved none."""
    return saved.read(Path(folder) / FILE, COLUMNS, required=COLUMNS, text=KEY[:4] + ["condition", "clip_id"],
                      typed=_typed, expected=f"the columns {', '.join(COLUMNS)}")


def load(root: Path, units: list[dict[str, Any]], conditions: tuple[str, ...]) -> pd.DataFrame:
    """The run's confidences under ``conditions``: from its unit directories when it has them, else as a report
    saved them in ``root`` (a report's ``data/``)."""
    return from_units(root, units, conditions) if units else read(root)


def write(folder: Path, table: pd.DataFrame) -> list[Path]:
    """Saves ``table`` to ``folder/confidences.csv``; returns the path written (none for an empty table)."""
    return saved.write(Path(folder) / FILE, table)


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    """The same columns and types whichever way the table was made, so a rebuilt report draws what the first drew."""
    table = table.astype({c: str for c in KEY[:4] + ["condition", "clip_id"]})
    table["seed"] = table["seed"].astype("int64")
    table["confidence"] = table["confidence"].astype(float)
    correct = table["correct"]
    if correct.dtype == object:  # read back from a CSV: "True"/"False"
        if not correct.isin(["True", "False", True, False]).all():
            raise ValueError("the column correct must hold True or False")
        correct = correct.isin(["True", True])
    table["correct"] = correct.astype(bool)
    if not table["confidence"].between(0, 1).all():
        raise ValueError("the column confidence must hold probabilities in [0, 1]")
    return table.sort_values(KEY + ["clip_id"], kind="stable").reset_index(drop=True)
