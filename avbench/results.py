"""Run records on disk and the tidy results table built from them.

Layout of a run directory (``--out``)::

    units/<corpus>/<profile>/<model>/<variant>/<regime>/seed-NN/
        identity.json    the unit's identity while it trains (semantics check on resume), removed when done
        train_state.pt   per-epoch training state (resume point), removed when done
        normalization.npz  the trial's z-normalisation statistics (training partition) the unit used
        model.pt         the dev-selected weights
        train.json       identity (with semantics versions), config, split, normalisation summary,
                         history, timings, parameter count, provenance
        evals/<condition>@<level>.json   metrics, per-clip predictions, timing
        record.json      train.json + every evaluation (one record per unit)
    masks/<corpus>/seed-NN/<condition>@<level>.npz   the seeded masks, shared by all models
    protocols/<protocol>@<corpus>.json   which units and conditions a protocol asked for
    results.csv      the tidy table: corpus, model, variant, regime, protocol,
                     condition, level, seed, metric, value

Every file is written atomically (temporary file + rename), so a killed run
leaves either the old file or the new one, never half of one.  Reports read
``results.csv`` (or rebuild it with :func:`collect`) and never retrain.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from avbench.atomic import atomic_path
from avbench.validation import DataError

COLUMNS = ["corpus", "model", "variant", "regime", "protocol", "condition", "level", "seed", "metric", "value"]


def write_json(path: Path, obj: Any) -> None:
    """Atomic JSON write."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, default=_jsonable))


def write_table(path: Path, table: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    with atomic_path(path, suffix=".tmp.npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: corrupt record ({exc}); delete it and rerun the same command to recompute "
                        "it.") from None


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Writes a protocol manifest, keeping the entries of earlier invocations.

    Results accumulate: a rerun with fewer ``--model``, fewer ``--seeds`` or another ``--set``
    variant adds its units to the protocol's manifest instead of replacing the list, so
    ``results.csv`` and the report keep every finished unit of the run directory.
    """
    path = Path(path)
    if path.exists():
        old = read_json(path)
        for key in ("entries", "train"):
            seen = {json.dumps(e, sort_keys=True) for e in manifest[key]}
            kept = [e for e in old.get(key, []) if json.dumps(e, sort_keys=True) not in seen]
            manifest = {**manifest, key: kept + manifest[key]}
        manifest["seeds"] = max(int(old.get("seeds", 0)), int(manifest["seeds"]))
    write_json(path, manifest)


def _jsonable(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def rows_for(protocol: str, unit: dict[str, Any], condition: str, level: float | None,
             metrics: dict[str, float]) -> list[dict[str, Any]]:
    base = {k: unit[k] for k in ("corpus", "model", "variant", "regime", "seed")}
    return [{**base, "protocol": protocol, "condition": condition,
             "level": np.nan if level is None else level, "metric": m, "value": v} for m, v in metrics.items()]


def collect(out: Path) -> pd.DataFrame:
    """Rebuilds the tidy table from the protocol manifests and evaluation records of a run.

    The robustness summary rows of ``results.csv`` are derived from these; the runner adds them
    with :func:`avbench.robustness.with_summaries`.
    """
    out = Path(out)
    rows: list[dict[str, Any]] = []
    for manifest in sorted((out / "protocols").glob("*.json")):
        m = read_json(manifest)
        for entry in m["entries"]:
            path = out / entry["eval"]
            if not path.exists():
                continue
            ev = read_json(path)
            rows += rows_for(m["protocol"], entry["unit"], ev["condition"], ev["level"], ev["metrics"])
        for entry in m.get("train", []):
            path = out / entry["train"]
            if path.exists():
                tr = read_json(path)
                rows += rows_for(m["protocol"], entry["unit"], "train", None, tr["train_metrics"])
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table.drop_duplicates(subset=COLUMNS[:-1], keep="last").reset_index(drop=True)


def load_results(path: Path) -> pd.DataFrame:
    """Reads a tidy table from a run directory or a CSV file, refusing what is not one.

    A value that is not a number would otherwise become a silent blank in every table, so
    ``value`` and ``level`` must be numbers (``level`` may be empty) and ``seed`` an integer;
    the message names the file, the line and the column.
    """
    path = Path(path)
    csv = path / "results.csv" if path.is_dir() else path
    if not csv.exists():
        raise FileNotFoundError(f"{csv}: no results table here (not found); run `avbench run ... --out {path}` first.")
    try:
        table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{csv}: cannot be read as a CSV results table ({str(exc).splitlines()[0]}).") from None
    missing = set(COLUMNS) - set(table.columns)
    if missing:
        raise DataError(f"{csv}: not an avbench results table (missing columns {sorted(missing)}).")
    for column, integer, blank_ok in (("value", False, True), ("level", False, True), ("seed", True, False)):
        text = table[column].str.strip()
        number = pd.to_numeric(text.where(text != "", None), errors="coerce")
        bad = (number.isna() & ((text != "") | (not blank_ok))) | (integer & (number % 1 != 0))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            kind = "an integer" if integer else ("a number or empty" if blank_ok else "a number")
            raise DataError(f"{csv}: line {i + 2}, column {column!r} must be {kind}. Got {table[column].iloc[i]!r} "
                            "instead. Fix or delete the row (avbench rebuilds results.csv from the run's "
                            "records on the next `avbench run`).")
        table[column] = number.astype(int) if integer else number
    table["variant"] = table["variant"].replace("", "default")
    return table


def summary_table(table: pd.DataFrame, metrics=("micro_f1", "macro_f1")) -> pd.DataFrame:
    """Wide view for the terminal: one row per (model, variant, regime, condition, level),
    one column per seed and metric, plus mean and standard deviation."""
    t = table[table["metric"].isin(metrics) & (table["condition"] != "train")].copy()
    if t.empty:
        return pd.DataFrame()
    t["level"] = t["level"].map(lambda x: "" if pd.isna(x) else f"{x:g}")
    keys = ["protocol", "model", "variant", "regime", "condition", "level"]
    wide = t.pivot_table(index=keys, columns=["metric", "seed"], values="value", aggfunc="first", sort=False)
    parts = []
    for m in metrics:
        if m not in wide.columns.get_level_values(0):
            continue
        block = wide[m].copy()
        block.columns = [f"s{c}" for c in block.columns]
        block["mean"], block["sd"] = block.mean(axis=1), block.std(axis=1, ddof=1)
        block.columns = pd.MultiIndex.from_product([[m], block.columns])
        parts.append(block)
    return pd.concat(parts, axis=1)
