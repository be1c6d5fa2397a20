"""Reading the users' own tables (label tables, manifests, partitions) with one set of messages.

Every table a researcher hands avbench is read the same way: all cells as text
(no guessing of numbers or NA, so clip ids like ``1001`` and labels like
``NA`` survive), column names stripped, and a message naming the file for
each way reading can fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from avbench.validation import DataError


def read_text_table(path: str | os.PathLike, what: str) -> pd.DataFrame:
    """A CSV file as a table of strings with stripped column names.

    Args:
        path: The file.
        what: What the file should be, for messages (e.g. "CREMA-D's summaryTable.csv").

    Raises:
        DataError: naming the file when it is missing or is not a readable CSV.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DataError(f"{path}: not found; expected {what}.") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({exc}); expected {what}.") from None
    table.columns = [str(c).strip() for c in table.columns]
    return table
