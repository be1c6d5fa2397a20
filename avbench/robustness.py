"""Robustness summaries: one number per (model, variant, regime, condition family, seed).

From the tidy results table (:data:`avbench.results.COLUMNS`):

* ``auc_<metric>``: area under the score-vs-level curve of one condition family
  (e.g. ``mask_audio``), by the trapezoid rule over the family's levels in
  increasing order, divided by the level range, so it is the curve's mean
  height and lies on the metric's own scale (the levels are in the unit their
  kind declares, ``avbench.conditions.ConditionKind.level_unit``: for ``mask``
  the fraction of frames kept, for ``burst`` the fraction removed, for
  ``shift`` milliseconds, for ``noise`` SNR in dB; families with fewer than
  two levels have no area); a unit scored at only some of the levels its protocol's
  family was scored at in the table (the union over units: e.g. a unit of an earlier run of
  a protocol whose levels were since changed) gets no area, since a mean over other levels is
  another quantity (its per-level rows stay);
* ``relative_auc_<metric>``: that area divided by the unit's clean score (its
  ``full`` condition), so 1.0 means "as good as with intact input";
* ``relative_<metric>`` (one row per condition and level, ``clip`` included):
  the score under the condition divided by the clean score.

The clean score is taken from the same protocol's ``full`` row, else from any
protocol's ``full`` row of the same (corpus, model, variant, regime, seed);
rows without a clean score (or a zero one) get no relative value.  Conditions
recorded as not applicable have no metric rows and so no summary rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from avbench.results import COLUMNS, UNIT_COLUMNS, read_manifests

UNIT = ["corpus", "model", "variant", "regime", "seed"]
SUMMARY_PREFIXES = ("auc_", "relative_")


def _trapezoid(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def family_levels(table: pd.DataFrame) -> pd.Series:
    """The level set of each (protocol, condition family) of ``table``: the sorted levels its rows were scored
    at, over every unit (the set a family's AUC is a mean over, and the set the report names beside it).
    Conditions without levels have no entry."""
    finite = table[np.isfinite(table["level"].astype(float))]
    return (finite.groupby(["protocol", "condition"], observed=True)["level"]
            .agg(lambda x: tuple(sorted(set(x.astype(float))))))


def robustness_summary(table: pd.DataFrame, metric: str = "micro_f1") -> pd.DataFrame:
    """Area under the score-vs-level curve and relative robustness, as tidy rows.

    Args:
        table: A tidy results table (``results.csv`` / :func:`avbench.results.collect`).
        metric: The score to summarise (``micro_f1``, ``macro_f1``, ``accuracy``).

    Returns:
        Rows with the table's columns: ``condition`` is the family (``mask_audio``),
        ``level`` is NaN for the ``auc_``/``relative_auc_`` rows and the condition's
        level for the per-level ``relative_`` rows; ``metric`` is ``auc_<metric>``,
        ``relative_auc_<metric>`` or ``relative_<metric>``.
    """
    columns = COLUMNS + [c for c in UNIT_COLUMNS if c in table.columns]
    unit_key = UNIT + [c for c in UNIT_COLUMNS if c in table.columns]  # facts of the unit, carried along
    t = table[(table["metric"] == metric) & (table["condition"] != "train")].copy()
    if t.empty:
        return pd.DataFrame(columns=columns)
    t["value"] = t["value"].astype(float)
    t["level"] = t["level"].astype(float)
    full = t[t["condition"] == "full"]
    clean_same = full.groupby(unit_key + ["protocol"])["value"].mean()
    clean_any = full.groupby(unit_key)["value"].mean()

    def clean(key: tuple) -> float:
        unit = key[:len(unit_key)]
        if key in clean_same.index:
            return float(clean_same[key])
        return float(clean_any[unit]) if unit in clean_any.index else float("nan")

    rows: list[dict] = []
    scored = t[t["condition"] != "full"]
    level_set = family_levels(scored)
    for key, g in scored.groupby(unit_key + ["protocol", "condition"], sort=True, dropna=False):
        base = dict(zip(unit_key + ["protocol", "condition"], key))
        ref = clean(tuple(key[:len(unit_key) + 1]))
        ok_ref = np.isfinite(ref) and ref != 0
        if ok_ref:
            for level, value in zip(g["level"], g["value"]):
                rows.append({**base, "level": level, "metric": f"relative_{metric}", "value": value / ref})
        curve = g.dropna(subset=["level"]).groupby("level")["value"].mean().sort_index()
        if len(curve) >= 2 and tuple(curve.index) == level_set.get((base["protocol"], base["condition"])):
            x, y = curve.index.to_numpy(float), curve.to_numpy(float)
            auc = _trapezoid(x, y) / (x[-1] - x[0])
            rows.append({**base, "level": np.nan, "metric": f"auc_{metric}", "value": auc})
            if ok_ref:
                rows.append({**base, "level": np.nan, "metric": f"relative_auc_{metric}", "value": auc / ref})
    out = pd.DataFrame(rows, columns=columns)
    return out.astype({"seed": int, "level": float, "value": float}) if len(out) else out


def summarised_protocols(out: Path) -> list[str]:
    """Names of the protocols of a run directory whose definition sets ``summary: true``."""
    return [m.protocol for m in read_manifests(out) if (m.definition or {}).get("summary")]


def with_summaries(table: pd.DataFrame, out: Path, metrics=("micro_f1", "macro_f1")) -> pd.DataFrame:
    """``table`` plus the robustness rows of every summarised protocol of run directory ``out``
    (idempotent: summary rows already in ``table`` are recomputed, not repeated)."""
    base = table[~table["metric"].astype(str).str.startswith(SUMMARY_PREFIXES)]
    names = summarised_protocols(out)
    if not names or base.empty:
        return base.reset_index(drop=True)
    sub = base[base["protocol"].isin(names)]
    parts = [base] + [robustness_summary(sub, m) for m in metrics]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True)[list(base.columns)]
