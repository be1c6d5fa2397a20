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
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: corrupt record ({exc}); delete it and rerun to recompute it.") from exc


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
    """Reads a tidy table from a run directory or a CSV file."""
    path = Path(path)
    csv = path / "results.csv" if path.is_dir() else path
    if not csv.exists():
        raise FileNotFoundError(f"{csv}: no results table here; run `avbench run ... --out {path}` first.")
    table = pd.read_csv(csv, keep_default_na=True, dtype={"variant": str})
    missing = set(COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"{csv}: not an avbench results table (missing columns {sorted(missing)}).")
    table["variant"] = table["variant"].fillna("default")
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
