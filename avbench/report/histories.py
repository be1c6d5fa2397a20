"""Training histories (per-epoch losses and dev scores) of a run's units, as one table.

A run keeps each unit's history in its ``train.json`` (:class:`avbench.results.TrainRecord`
``history``, written by :func:`avbench.training.fit`).  A report saves them all to
``data/histories.csv``, so a report rebuilt from its ``data/`` folder, without the unit
directories, still draws the training curves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from avbench.report import saved

#: The file a report's ``data/`` folder keeps the histories in.
FILE = "histories.csv"
#: What names a unit's history (as the tidy table names the unit).
KEY = ["corpus", "model", "variant", "regime", "seed", "epoch"]
#: The values read from each history entry; a run made before avbench recorded one leaves it empty.
VALUES = ["train_loss", "dev_loss", "dev_micro_f1", "dev_macro_f1"]
COLUMNS = KEY + VALUES


def from_units(units: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per unit and epoch from the units :func:`avbench.report.rundata.load_run` read (each
    its table key and its ``history``)."""
    rows = [{**{k: unit.get(k) for k in KEY[:-1]}, "epoch": entry.get("epoch"), **{v: entry.get(v) for v in VALUES}}
            for unit in units for entry in unit.get("history") or []]
    return _typed(pd.DataFrame(rows, columns=COLUMNS))


def read(folder: Path) -> pd.DataFrame:
    """The histories a report saved in ``folder`` (its ``data/``); empty when it saved none."""
    return saved.read(Path(folder) / FILE, COLUMNS, required=KEY, text=KEY[:4], typed=_typed,
                      expected=f"the columns {', '.join(COLUMNS)} with numbers for seed, epoch and the values",
                      na_values={v: [""] for v in VALUES})


def load(units: list[dict[str, Any]], folder: Path) -> pd.DataFrame:
    """The run's histories: from its units' records when it has them, else as a report saved them."""
    return from_units(units) if units else read(folder)


def write(folder: Path, table: pd.DataFrame) -> list[Path]:
    """Saves ``table`` to ``folder/histories.csv``; returns the path written (none for an empty table)."""
    return saved.write(Path(folder) / FILE, table)


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    """The same columns with the same types whichever way the table was made, so a rebuilt report
    draws what the first one drew."""
    table = table.astype({c: str for c in KEY[:4]})
    table[["seed", "epoch"]] = table[["seed", "epoch"]].astype("int64")
    table[VALUES] = table[VALUES].astype(float)
    return table.sort_values(KEY, kind="stable").reset_index(drop=True)
