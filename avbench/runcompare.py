"""Comparing two runs unit by unit: did a change to a model (or to avbench) cost accuracy or robustness?

``avbench compare RUN_A RUN_B`` pairs the scores of two runs by (corpus, protocol, model, variant, regime,
condition, level, seed), so that the same split of the same corpus scored before and after the change is a
matched pair, and tests each cell (every key but the seed) of each chosen metric: a two-sided paired t-test
with Holm's correction over the compared cells, and the Bayesian posterior of the mean difference with a
region of practical equivalence (:func:`avbench.stats.correlated_t`). Scores found in one run only are
listed, never silently dropped; runs of different corpora or splits are refused (their scores are not pairs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sst

from avbench import stats
from avbench.atomic import atomic_path
from avbench.results import load_results, parse_corpus_id, write_table
from avbench.validation import ValidationError, check_float

__all__ = ["DEFAULT_METRICS", "EXIT_WORSE", "PAIR_KEY", "RunComparison", "compare_runs", "write_comparison"]

PAIR_KEY = ("corpus", "protocol", "model", "variant", "regime", "condition", "level", "seed")
#: A unit of a run: what one training produced (its conditions are scored from one checkpoint).
UNIT_KEY = ("corpus", "protocol", "model", "variant", "regime", "seed")
DEFAULT_METRICS = ("micro_f1", "macro_f1")
IGNORABLE = ("variant",)
#: How sure the posterior must be that B lost more than the margin before ``--fail-if-worse`` fails.
FAIL_PROBABILITY = 0.95
#: The exit status of ``--fail-if-worse`` (1 means bad data, 2 a bad option).
EXIT_WORSE = 3
OUT_FORMATS = (".csv", ".md", ".tex")
CELL_COLUMNS = ["corpus", "protocol", "model", "variant", "regime", "condition", "level", "metric"]


@dataclass
class RunComparison:
    """What :func:`compare_runs` found.

    Attributes:
        cells: One row per compared cell and metric: the means of A and B over the paired trials, the mean
            difference B - A with its 95% t-interval, the two-sided paired t-test's p and Holm-adjusted p
            (over the cells of that metric), and the posterior P(B better), P(equivalent), P(B worse) by more
            than the ROPE.
        unpaired: Scores of one run without a partner in the other, by unit (``run`` says which has them).
        untested: Cells paired but not testable, with the reason.
        worse: The cells where B is worse than A by more than ``margin`` with probability above 0.95.
    """

    a: Path
    b: Path
    metrics: tuple[str, ...]
    rope: float
    margin: float | None
    pair_ignore: tuple[str, ...]
    cells: pd.DataFrame
    unpaired: pd.DataFrame
    untested: list[str] = field(default_factory=list)
    worse: pd.DataFrame = field(default_factory=pd.DataFrame)


def _check_corpora(ta: pd.DataFrame, tb: pd.DataFrame, a: Path, b: Path) -> None:
    ca, cb = sorted(set(ta["corpus"])), sorted(set(tb["corpus"]))
    if ca == cb:
        return
    what = []
    for cid in sorted(set(ca) ^ set(cb)):
        name, prefix = parse_corpus_id(cid)
        splits = cid.partition("+splits-")[2]
        twins = [o for o in (cb if cid in ca else ca) if parse_corpus_id(o)[0] == name]
        if twins:
            other = twins[0]
            if parse_corpus_id(other)[1] != prefix:
                what.append(f"corpus {name} has checksum {prefix} in one run and {parse_corpus_id(other)[1]} in the "
                            f"other (different data)")
            else:
                what.append(f"corpus {name} uses splits {splits or 'the default speaker splits'} in one run and "
                            f"{other.partition('+splits-')[2] or 'the default speaker splits'} in the other")
        else:
            what.append(f"corpus {cid} is only in {a if cid in ca else b}")
    raise ValidationError(f"The runs {a} and {b} are of different corpora or splits, so their scores are not paired "
                          f"trials: {'; '.join(dict.fromkeys(what))}. Compare runs of the same corpus and splits.")


def _check_metrics(metrics: Sequence[str], ta: pd.DataFrame, tb: pd.DataFrame) -> tuple[str, ...]:
    metrics = tuple(dict.fromkeys(metrics))
    scored = [set(t.loc[t["condition"] != "train", "metric"]) for t in (ta, tb)]
    common = sorted(scored[0] & scored[1])
    bad = [m for m in metrics if m not in common]
    if bad or not metrics:
        raise ValidationError(f"The 'metrics' parameter of compare_runs names {bad or 'nothing'}, which the two runs "
                              f"do not both score; choose among {common}.", param="metrics", owner="compare_runs")
    return metrics


def _keyed(t: pd.DataFrame, metrics: tuple[str, ...], key: list[str], run: Path) -> pd.DataFrame:
    t = t[t["metric"].isin(metrics) & (t["condition"] != "train")].copy()
    t["level"] = t["level"].astype(float).round(9)
    t = t.drop_duplicates(subset=key + ["metric", "value"])
    dup = t[t.duplicated(subset=key + ["metric"], keep=False)]
    if not dup.empty:
        row = dup.iloc[0]
        cols = key + ["metric"]
        clash = dup[dup[cols].fillna(-1.0).eq(row[cols].fillna(-1.0)).all(axis=1)]
        varying = [c for c in ("variant", "protocol") if clash[c].nunique() > 1]
        hint = (f"variants {sorted(clash['variant'].unique())} of model {row['model']} both pair with one unit of the "
                f"other run; compare one variant at a time" if varying == ["variant"] else
                "a score is recorded twice with different values")
        raise ValidationError(f"{run}: several {row['metric']} scores for one pairing key "
                              f"({', '.join(f'{k}={row[k]}' for k in key if not (k == 'level' and pd.isna(row[k])))})"
                              f": {hint}.")
    return t


def compare_runs(a: str | Path, b: str | Path, *, metrics: Sequence[str] = DEFAULT_METRICS,
                 rope: float = stats.DEFAULT_ROPE, alpha: float = 0.05, pair_ignore: Sequence[str] = (),
                 fail_if_worse: float | None = None) -> RunComparison:
    """Pairs the scores of runs ``a`` and ``b`` and tests every cell of every metric (B relative to A).

    Args:
        a: The reference run: a run directory, a report's ``data/`` folder, or a results CSV.
        b: The run under test, likewise.
        metrics: The metrics compared (and checked by ``fail_if_worse``); default micro- and macro-F1.
        rope: Region of practical equivalence of the Bayesian comparison (0 < rope < 1).
        alpha: Level of the Holm-corrected paired t-tests.
        pair_ignore: Key columns left out of the pairing: ``("variant",)`` pairs units whose variant names
            differ (a ``--set`` renames the variant), as long as each run holds one variant per remaining key.
        fail_if_worse: A margin: cells where P(B - A < -margin) > 0.95 are listed in ``worse``.

    Raises:
        ValidationError: Bad options, runs of different corpora or splits, a metric missing from either run,
            or a pairing key holding several scores.
        FileNotFoundError: No results table at ``a`` or ``b``.
    """
    owner = "compare_runs"
    a, b = Path(a), Path(b)
    rope = stats.check_rope(rope, owner)
    alpha = check_float(alpha, "alpha", owner, low=0, high=1, low_open=True, high_open=True)
    margin = None if fail_if_worse is None else check_float(fail_if_worse, "fail_if_worse", owner, low=0, high=1,
                                                            high_open=True)
    bad = [c for c in pair_ignore if c not in IGNORABLE]
    if bad:
        raise ValidationError(f"The 'pair_ignore' parameter of {owner} must be among {list(IGNORABLE)}. Got {bad} "
                              f"instead.", param="pair_ignore", owner=owner)
    ta, tb = load_results(a), load_results(b)
    _check_corpora(ta, tb, a, b)
    metrics = _check_metrics(metrics, ta, tb)
    key = [c for c in PAIR_KEY if c not in pair_ignore]
    ka, kb = _keyed(ta, metrics, key, a), _keyed(tb, metrics, key, b)
    merged = ka.merge(kb, on=key + ["metric"], how="outer", suffixes=("_a", "_b"), indicator=True)
    for c in pair_ignore:
        merged[c] = merged[f"{c}_a"].fillna(merged[f"{c}_b"])
    unpaired = _unpaired(merged, a, b)
    both = merged[merged["_merge"] == "both"]
    cells, untested = _test_cells(both, [c for c in key if c != "seed"], rope, pair_ignore)
    if not cells.empty:
        for metric in metrics:
            rows = cells["metric"] == metric
            cells.loc[rows, "significant"], cells.loc[rows, "p_holm"] = stats.correct(cells.loc[rows, "p"], "holm",
                                                                                         alpha)
    worse = pd.DataFrame()
    if margin is not None and not cells.empty:
        cells["p_b_worse_than_margin"] = _p_below_all(cells, margin)
        worse = cells[cells["p_b_worse_than_margin"] > FAIL_PROBABILITY]
    cells = cells.drop(columns="_diffs", errors="ignore")
    worse = worse.drop(columns="_diffs", errors="ignore")
    return RunComparison(a, b, metrics, rope, margin, tuple(pair_ignore), cells, unpaired, untested, worse)


def _unpaired(merged: pd.DataFrame, a: Path, b: Path) -> pd.DataFrame:
    alone = merged[merged["_merge"] != "both"]
    if alone.empty:
        return pd.DataFrame(columns=["run", *UNIT_KEY, "scores", "conditions"])
    alone = alone.assign(run=np.where(alone["_merge"] == "left_only", str(a), str(b)))
    if "variant" not in alone.columns:
        alone["variant"] = alone["variant_a"].fillna(alone["variant_b"])
    out = (alone.groupby(["run", *UNIT_KEY], dropna=False, observed=True)
           .agg(scores=("metric", "size"), conditions=("condition", lambda c: ", ".join(sorted(set(map(str, c))))))
           .reset_index())
    return out


def _test_cells(both: pd.DataFrame, cell_key: list[str], rope: float, pair_ignore: Sequence[str]
                ) -> tuple[pd.DataFrame, list[str]]:
    """Every cell's paired t-test and posterior at once.

    The arithmetic is scipy's ``ttest_rel`` (two-sided) and :func:`avbench.stats.correlated_t`, written over arrays
    of cells: calling them once per cell costs ~4 ms each, and a run holds hundreds of cells (the example report
    822), which ``avbench compare`` must get through in a few seconds. tests/test_compare.py checks every cell
    against the two functions.
    """
    keys = cell_key + ["metric"]
    extra = [f"{c}_{s}" for c in pair_ignore for s in ("a", "b")]
    d = both.assign(diff=both["value_b"].astype(float) - both["value_a"].astype(float))
    grouped = d.groupby(keys, dropna=False, sort=True, observed=True)
    agg = grouped.agg(n=("diff", "size"), nan=("diff", lambda x: int(x.isna().sum())), mean_a=("value_a", "mean"),
                      mean_b=("value_b", "mean"), diff=("diff", "mean"), sd=("diff", "std"),
                      **{c: (c, "first") for c in extra}).reset_index()
    diffs = grouped["diff"].apply(lambda x: x.to_numpy(float)).reset_index(drop=True)
    untested = []
    bad = (agg["nan"] > 0) | (agg["n"] < 2)
    for _, r in agg[bad].iterrows():
        label = ", ".join(f"{k}={r[k]}" for k in keys if not (k == "level" and pd.isna(r[k])))
        untested.append(f"{label}: " + ("NaN scores" if r["nan"] else f"only {r['n']} paired trial(s)"))
    diffs = diffs[~bad.to_numpy()].reset_index(drop=True)
    agg = agg[~bad].drop(columns="nan").reset_index(drop=True)
    n, mean, sd = agg["n"].to_numpy(float), agg["diff"].to_numpy(float), agg["sd"].to_numpy(float)
    df, se = n - 1, sd / np.sqrt(n)
    spread = sd > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / se
        p = np.where(spread, 2 * sst.t.sf(np.abs(t), df), np.where(mean != 0, 0.0, np.nan))  # as ttest_rel
        half = sst.t.ppf(0.975, df) * se
        better = np.where(spread, sst.t.sf((rope - mean) / se, df), (mean > rope).astype(float))
        worse = np.where(spread, sst.t.cdf((-rope - mean) / se, df), (mean < -rope).astype(float))
    agg["ci_low"], agg["ci_high"], agg["p"] = mean - half, mean + half, p
    agg["p_b_better"], agg["p_rope"], agg["p_b_worse"] = better, 1.0 - better - worse, worse
    agg["_diffs"] = diffs
    return agg.drop(columns="sd"), untested


def _p_below_all(cells: pd.DataFrame, margin: float) -> np.ndarray:
    """P(mean of B - A < -margin) per cell under the correlated-t posterior (a point mass without spread)."""
    n, mean = cells["n"].to_numpy(float), cells["diff"].to_numpy(float)
    sd = np.array([np.std(d, ddof=1) for d in cells["_diffs"]])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, sst.t.cdf((-margin - mean) / (sd / np.sqrt(n)), n - 1), (mean < -margin).astype(float))


# ---------------------------------------------------------------------------- output
def _fmt(x: float, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def _p_text(x: float) -> str:
    return "–" if not math.isfinite(x) else (f"{x:.3f}" if x >= 0.001 else "<0.001")


def _label(row: pd.Series, pair_ignore: tuple[str, ...]) -> str:
    parts = [str(row["model"]), str(row["variant"]) if "variant" not in pair_ignore
             else f"{row['variant_a']} → {row['variant_b']}", str(row["regime"]), str(row["condition"])]
    if pd.notna(row["level"]):
        parts.append(f"{row['level']:g}")
    return " / ".join(parts)


def as_table(result: RunComparison):
    """The comparison as an avbench report :class:`~avbench.report.render.Table` (LaTeX and Markdown renderings)."""
    from avbench.report.render import Cell, Row, Section, Table

    sections = []
    cells = result.cells
    if not cells.empty:
        for (corpus, protocol, metric), group in cells.groupby(["corpus", "protocol", "metric"], sort=True):
            rows = [Row(_label(r, result.pair_ignore),
                        [Cell(str(int(r["n"]))), Cell(_fmt(r["mean_a"])), Cell(_fmt(r["mean_b"])),
                         Cell(f"{r['diff']:+.3f}"), Cell(f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"),
                         Cell(_p_text(r["p_holm"])), Cell(_fmt(r["p_b_better"])), Cell(_fmt(r["p_rope"])),
                         Cell(_fmt(r["p_b_worse"]))])
                    for _, r in group.iterrows()]
            sections.append(Section(f"{corpus}, protocol {protocol}, {metric}", rows))
    caption = (f"Run B ({result.b}) against run A ({result.a}), scores paired by corpus, protocol, model, "
               f"{'' if 'variant' in result.pair_ignore else 'variant, '}regime, condition, level and seed. "
               f"B − A: mean difference over the paired trials with its 95% t-interval; p: two-sided paired t-test, "
               f"Holm-corrected over the cells of each metric; P(B better), P(equiv.), P(B worse): posterior of the "
               f"mean difference (Student t, correlated t-test with correlation 0) beyond, within and below the "
               f"region of practical equivalence ±{result.rope:g}.")
    return Table("compare", "Comparison", "Run B against run A", caption, "model / variant / regime / condition / level",
                 [], ["n", "A", "B", "B − A", "95% CI", "p (Holm)", "P(B better)", "P(equiv.)", "P(B worse)"],
                 sections, best=None)


def write_comparison(result: RunComparison, out: str | Path) -> Path:
    """Writes the cells as CSV (every column), Markdown or LaTeX, chosen by ``out``'s suffix; atomically."""
    out = Path(out)
    if out.suffix.lower() not in OUT_FORMATS:
        raise ValidationError(f"The '--out' option must end in {', '.join(OUT_FORMATS)} (the format written). "
                              f"Got {out.name!r} instead.")
    if out.suffix.lower() == ".csv":
        write_table(out, result.cells)
        return out
    table = as_table(result)
    text = table.to_markdown() if out.suffix.lower() == ".md" else table.to_latex()
    with atomic_path(out) as tmp:
        Path(tmp).write_text(text)
    return out
