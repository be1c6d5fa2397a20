"""Tables a report saves in its ``data/`` folder beside ``results.csv`` (training histories, per-clip
confidences), so that a report rebuilt from ``data/``, without the unit directories, draws what the
first one drew: one way to write them and one way to read them back, checked."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from avbench.results import write_table
from avbench.validation import DataError


def read(path: Path, columns: list[str], *, required: list[str], text: list[str], typed: Callable,
         expected: str, na_values: dict | None = None) -> pd.DataFrame:
    """The table saved at ``path`` with ``columns`` (each of ``required`` must be there; ``text`` columns are
    read as strings), passed through ``typed``; an empty one when none was saved.

    Raises:
        DataError: The file is not such a table, naming it and what was ``expected``.
    """
    if not path.exists():
        return typed(pd.DataFrame(columns=columns))
    try:
        table = pd.read_csv(path, dtype={c: str for c in text}, keep_default_na=False, na_values=na_values)
        missing = [c for c in required if c not in table.columns]
        if missing:
            raise ValueError(f"the columns {', '.join(missing)} are missing")
        return typed(table.reindex(columns=columns))
    except (ValueError, TypeError) as exc:  # pandas' ParserError is a ValueError
        raise DataError(f"{path}: not an avbench {path.stem} table ({str(exc).splitlines()[0]}); expected "
                        f"{expected}.") from None


def write(path: Path, table: pd.DataFrame) -> list[Path]:
    """Saves ``table`` at ``path``; returns the path written (none for an empty table)."""
    if table.empty:
        return []
    write_table(path, table)
    return [path]
