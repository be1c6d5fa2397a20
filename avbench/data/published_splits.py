"""Partitions a user supplies (e.g. the authors' own), registered under a name and used by ``--splits``.

The paper draws random speaker-independent splits; the authors later released
their own partitions (CREMA-D: 63/14/14 actors, 5 partitions; MSP-IMPROV: by
session).  A table ``clip_id, trial, partition`` (partition = train, dev or
test) becomes a list of :class:`~avbench.data.splits.Split` under the same
guards as drawn splits: within a trial every clip of the store appears
exactly once and no speaker is in two partitions.  Clips of the table that
the store lacks (e.g. a clip prepare could not extract) are counted and
ignored.

The registered partitions are written to the cache directory
(``$AVBENCH_HOME/splits/<store>/<name>.json``) or a directory the user names,
never into the store, which may be read-only.  Their content hash joins the
run's corpus id, so a unit trained on other partitions is never reused or
scored with them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from avbench.atomic import atomic_path
from avbench.data.splits import PARTITIONS, Split, check_split, split_seed
from avbench.data.tables import read_text_table
from avbench.paths import data_home
from avbench.validation import DataError, ValidationError

FORMAT = 1
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def splits_dir(store, directory: str | os.PathLike | None = None) -> Path:
    """Where named partitions of ``store`` live: ``directory`` or the cache, per store content."""
    base = Path(directory) if directory is not None else data_home() / "splits"
    return base / f"{store.name}-{store.checksum[:8]}"


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValidationError(f"The 'name' parameter of avbench data splits import must be letters, digits, '.', "
                              f"'_' or '-' (starting with a letter or digit). Got {name!r} instead.")
    return name


def partitions_from_table(table: pd.DataFrame, store, where: str, *, clip_col: str = "clip_id",
                          trial_col: str = "trial", partition_col: str = "partition") -> tuple[list[Split], int]:
    """Speaker partitions per trial from a clip table; returns the splits and the clips the store lacks."""
    missing = [c for c in (clip_col, trial_col, partition_col) if c not in table.columns]
    if missing:
        raise DataError(f"{where}: missing columns {', '.join(missing)}; expected {clip_col}, {trial_col}, "
                              f"{partition_col} (one row per clip and trial; partition train, dev or test).")
    table = table.astype(str).apply(lambda s: s.str.strip())
    bad = ~table[partition_col].str.lower().isin(PARTITIONS)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{where}, line {i + 2}: partition {table[partition_col].iloc[i]!r}; expected one of "
                              f"{', '.join(PARTITIONS)}.")
    table[partition_col] = table[partition_col].str.lower()
    dup = table.duplicated([trial_col, clip_col])
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise DataError(f"{where}, line {i + 2}: clip {table[clip_col].iloc[i]!r} appears twice in trial "
                              f"{table[trial_col].iloc[i]!r}; every clip must be in exactly one partition per trial.")
    speaker_of = dict(zip(store.manifest["clip_id"].astype(str), store.speakers.astype(str)))
    known = table[clip_col].isin(speaker_of)
    unknown = int((~known).sum())
    table = table[known]
    trials = sorted(table[trial_col].unique(), key=lambda t: (len(t), t))
    if not trials:
        raise DataError(f"{where}: no clip of the table is in the store {store.path}; check the clip ids.")
    splits = []
    for index, trial in enumerate(trials):
        rows = table[table[trial_col] == trial]
        absent = sorted(set(speaker_of) - set(rows[clip_col]))
        if absent:
            raise DataError(f"{where}: trial {trial!r} leaves out {len(absent)} clips of the store (e.g. "
                                  f"{absent[0]!r}); every clip must be in exactly one partition per trial.")
        members = {p: set() for p in PARTITIONS}
        for clip, part in zip(rows[clip_col], rows[partition_col]):
            members[part].add(speaker_of[clip])
        split = Split(index, split_seed(0, index), *(tuple(sorted(members[p])) for p in PARTITIONS))
        check_split(split, store.speakers, where=f"{where}, trial {trial!r}")
        splits.append(split)
    return splits, unknown


def import_splits(table_csv: str | os.PathLike, store, name: str, *, directory: str | os.PathLike | None = None,
                  clip_col: str = "clip_id", trial_col: str = "trial", partition_col: str = "partition") -> dict:
    """Checks and registers the partitions of ``table_csv`` for ``store`` under ``name``.

    Returns the written record (``path``, ``hash``, ``trials``, ``unknown_clips``).
    """
    _check_name(name)
    path = Path(table_csv)
    table = read_text_table(path, "a partition table (clip_id, trial, partition)")
    splits, unknown = partitions_from_table(table, store, str(path), clip_col=clip_col, trial_col=trial_col,
                                            partition_col=partition_col)
    body = [s.to_json() for s in splits]
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    record = {"format_version": FORMAT, "name": name, "source": str(path.resolve()), "store_name": store.name,
              "store_checksum": store.checksum, "hash": digest, "unknown_clips": unknown, "splits": body}
    target = splits_dir(store, directory) / f"{name}.json"
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    return {"path": target, "hash": digest, "trials": len(splits), "unknown_clips": unknown}


def load_named_splits(store, name: str, directory: str | os.PathLike | None = None) -> tuple[list[Split], str]:
    """The partitions registered as ``name`` for ``store`` and their id (``name-hash8``) for unit identity."""
    _check_name(name)
    folder = splits_dir(store, directory)
    file = folder / f"{name}.json"
    if not file.is_file():
        known = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        raise ValidationError(f"The '--splits' option names partitions {name!r}, but none are registered for the store "
                              f"{store.path} (looked in {folder}; registered: {', '.join(known) or 'none'}). Register "
                              "them with: avbench data splits import TABLE --store STORE --name NAME")
    try:
        record = json.loads(file.read_text())
        splits = [Split.from_json(s) for s in record["splits"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{file}: cannot be read as registered partitions ({exc}); import them again.") from None
    if record.get("store_checksum") != store.checksum:
        raise DataError(f"{file}: registered for a store with checksum {record.get('store_checksum')!r}, not "
                              f"{store.checksum!r}; import the partitions again for this store.")
    body = hashlib.sha256(json.dumps([s.to_json() for s in splits], sort_keys=True).encode()).hexdigest()
    if body != record.get("hash"):
        raise DataError(f"{file}: its partitions do not match their recorded hash; the file was edited. "
                              "Import the partitions again.")
    for s in splits:
        check_split(s, store.speakers, where=f"{file}, trial {s.index}")
    return splits, f"{name}-{body[:8]}"
