"""Paired significance tests over seeded trials, as in AuxFormer (Goncalves & Busso 2022, Sec. 4.4).

Every avbench experiment is repeated over N seeds (20 in the paper), and seed i is one
speaker-independent split shared by every model. Two models' scores on the same seed are therefore
a matched pair: they share the split's difficulty, so the test must work on the per-seed
differences (a paired test), not on two independent samples. Pairing by seed is why
:func:`paired_scores` refuses anything that is not exactly one score per seed on each side.

The paper uses a one-tailed matched-pair t-test at p = 0.05 on the macro and micro F1-scores of the
20 trials, and marks a result with ``*`` when the proposed model is significantly better than each
of the baselines. The paper applies no correction for testing one model against several baselines;
avbench keeps the paper's test and level as defaults but corrects with Holm by default, because
"better than every baseline" is a family of claims. ``correction="none"`` reproduces the paper.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats import multitest

from avbench.results import matches
from avbench.validation import ValidationError, check_choice, check_float

__all__ = [
    "ALTERNATIVES", "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "COLUMNS", "CORRECTION_NAMES", "CORRECTIONS",
    "INTERVALS", "MIN_BOOTSTRAP_TRIALS", "MIN_TRIALS", "TESTS", "PairedTest", "TooFewTrialsWarning",
    "bootstrap_interval", "check_interval", "compare", "compare_all", "correct", "paired_arrays", "paired_scores",
    "paired_test", "significance_mark", "summarize",
]

TESTS = ("t", "wilcoxon")
#: How the interval of a mean difference is computed: the t-interval, or also scipy's BCa bootstrap.
INTERVALS = ("t", "bootstrap")
#: Fewer trials than this and a bootstrap interval is refused: with a handful of values the resamples
#: take only a few distinct means, and BCa's bias and acceleration estimates rest on almost nothing.
MIN_BOOTSTRAP_TRIALS = 10
#: Resamples and seed of every bootstrap interval, so a report rebuilt from the same data is identical.
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0
ALTERNATIVES = ("greater", "less", "two-sided")
MIN_TRIALS = 5
#: "none" (the paper) plus every name ``multipletests`` accepts (statsmodels 0.14/0.15 aliases).
CORRECTIONS = (
    "none", "b", "bonf", "bonferroni", "s", "sidak", "h", "holm", "hs", "holm-sidak",
    "sh", "simes-hochberg", "ho", "hommel", "fdr_bh", "fdr_i", "fdr_p", "fdri", "fdrp",
    "fdr_by", "fdr_n", "fdr_c", "fdrn", "fdrcorr", "fdr_tsbh", "fdr_2sbh",
    "fdr_tsbky", "fdr_2sbky", "fdr_twostage", "fdr_gbs", "lfdr", "lfdr_sl",
)
#: How captions name a correction (the common ones, aliases included; any other by its code).
CORRECTION_NAMES = {"holm": "Holm", "h": "Holm", "bonferroni": "Bonferroni", "b": "Bonferroni", "bonf": "Bonferroni",
                    "sidak": "Šidák", "holm-sidak": "Holm-Šidák", "hommel": "Hommel", "simes-hochberg": "Hochberg",
                    "fdr_bh": "Benjamini-Hochberg (FDR)", "fdr_by": "Benjamini-Yekutieli (FDR)"}
COLUMNS = ("metric", "proposed", "baseline", "n", "mean_proposed", "mean_baseline", "mean_diff", "sd_diff",
           "ci_low", "ci_high", "boot_low", "boot_high", "cohen_dz", "statistic", "pvalue", "p_adjusted", "significant",
           "test", "alternative", "correction", "alpha")


class TooFewTrialsWarning(UserWarning):
    """Fewer than :data:`MIN_TRIALS` paired trials: the p-value rests on almost no evidence."""


@dataclass(frozen=True)
class PairedTest:
    """The outcome of one paired test of scores ``a`` against scores ``b``.

    Attributes:
        n: Number of paired trials (seeds).
        mean_a: Mean score of ``a``.
        mean_b: Mean score of ``b``.
        mean_diff: Mean of the per-seed differences ``a - b``.
        sd_diff: Sample standard deviation (ddof 1) of those differences: what power and trial counts need.
        statistic: The test statistic as scipy reports it (t, or Wilcoxon's signed-rank sum).
        pvalue: The p-value as scipy reports it (NaN when every difference is zero for the t-test).
        ci_low: Lower end of the two-sided t-interval of ``mean_diff``.
        ci_high: Upper end of that interval.
        boot_low: Lower end of the BCa bootstrap interval of ``mean_diff`` (NaN unless asked for).
        boot_high: Upper end of that interval.
        cohen_dz: Cohen's d_z = mean(diff) / std(diff, ddof=1); +/-inf when the differences are a
            nonzero constant, NaN when they are all zero.
        test: "t" or "wilcoxon".
        alternative: "greater" (a better than b), "less" or "two-sided".
        significant: ``pvalue <= alpha`` (the same rule statsmodels uses after correction).
    """

    n: int
    mean_a: float
    mean_b: float
    mean_diff: float
    sd_diff: float
    statistic: float
    pvalue: float
    ci_low: float
    ci_high: float
    cohen_dz: float
    test: str
    alternative: str
    significant: bool
    boot_low: float = math.nan
    boot_high: float = math.nan


def _check_table(table: Any, owner: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise ValidationError(f"The 'table' parameter of {owner} must be a pandas DataFrame of tidy "
                              f"results. Got {type(table).__name__} instead.")
    missing = [c for c in ("seed", "metric", "value") if c not in table.columns]
    if missing:
        raise ValidationError(f"The results table given to {owner} lacks columns {missing}; expected "
                              f"the tidy columns corpus, model, variant, regime, protocol, condition, "
                              f"level, seed, metric, value. Got {list(table.columns)}.")


def _filter(rows: pd.DataFrame, filt: Mapping[str, Any], what: str) -> pd.DataFrame:
    """Applies the filters one by one so an empty result names the filter that matched nothing."""
    if not isinstance(filt, Mapping):
        raise ValidationError(f"{what} must be a dict of column filters such as "
                              f"{{'model': 'auxformer'}}. Got {filt!r} instead.")
    unknown = [k for k in filt if k not in rows.columns]
    if unknown:
        raise ValidationError(f"{what}={dict(filt)!r} names columns {unknown} that the results table "
                              f"lacks; its columns are {list(rows.columns)}.")
    for col, want in filt.items():
        kept = rows[matches(rows[col], want)]
        if kept.empty:
            raise ValidationError(f"{what}={dict(filt)!r} selects nothing: {col}={want!r} matched no "
                                  f"rows. Values of {col!r} available there: "
                                  f"{rows[col].drop_duplicates().tolist()}.")
        rows = kept
    return rows


def _metric_rows(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    rows = table[table["metric"] == metric]
    if rows.empty:
        raise ValidationError(f"No rows have metric={metric!r}; the table's metrics are "
                              f"{table['metric'].drop_duplicates().tolist()}.")
    return rows


def _select(rows: pd.DataFrame, metric: str, filt: Mapping[str, Any], side: str) -> pd.Series:
    rows = _filter(rows, filt, f"Side {side}")
    dup = rows[rows["seed"].duplicated(keep=False)]
    if not dup.empty:
        varying = [c for c in dup.columns if c not in ("seed", "value")
                   and dup[c].nunique(dropna=False) > 1]
        hint = (f"the rows differ in {varying}: add those columns to the filter" if varying
                else "the rows are exact duplicates: a result was recorded twice")
        raise ValidationError(f"Side {side}={dict(filt)!r} selects several {metric!r} scores for seeds "
                              f"{sorted(set(dup['seed'].tolist()))}; expected one score per seed ({hint}).")
    nan = rows.loc[rows["value"].isna(), "seed"]
    if not nan.empty:
        raise ValidationError(f"Side {side}={dict(filt)!r} has NaN {metric!r} scores for seeds "
                              f"{sorted(nan.tolist())}; every trial needs a score (re-run the failed "
                              f"trials, or drop those seeds from both sides).")
    return rows.set_index("seed")["value"]


def paired_scores(table: pd.DataFrame, metric: str, a: Mapping[str, Any],
                  b: Mapping[str, Any]) -> pd.DataFrame:
    """Selects two sets of per-seed scores and aligns them by seed.

    The test is only valid when both sides hold exactly one score for the same seeds, so anything
    else is refused rather than silently dropped: a missing seed usually means a crashed run.

    Args:
        table: Tidy results with at least the columns ``seed``, ``metric`` and ``value``.
        metric: The metric to compare, e.g. "macro_f1".
        a: Column filters for side a, e.g. ``{"model": "auxformer", "regime": "optimized",
            "condition": "av"}``, matched as :func:`avbench.results.select` matches (None or NaN: a
            missing value such as ``level`` of the intact test; a float within 1e-9).
        b: Column filters for side b.

    Returns:
        A DataFrame with columns ``seed, a, b``, one row per seed, sorted by seed.

    Raises:
        ValidationError: A filter matches nothing (the message names it), a side holds several
            scores for one seed, a score is NaN, or the two sides cover different seeds (the
            message lists the seeds missing on each side).
    """
    _check_table(table, "paired_scores")
    rows = _metric_rows(table, metric)
    sa, sb = _select(rows, metric, a, "a"), _select(rows, metric, b, "b")
    missing_a, missing_b = sb.index.difference(sa.index), sa.index.difference(sb.index)
    if len(missing_a) or len(missing_b):
        raise ValidationError(f"The two sides are not paired: each seed needs a {metric!r} score on "
                              f"both. Seeds missing on side a ({dict(a)!r}): {missing_a.tolist()}; "
                              f"missing on side b ({dict(b)!r}): {missing_b.tolist()}.")
    seeds = sa.index.sort_values()
    return pd.DataFrame({"seed": seeds, "a": sa.loc[seeds].to_numpy(), "b": sb.loc[seeds].to_numpy()})


def _scores(x: Any, name: str, owner: str = "paired_test") -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise ValidationError(f"The {name!r} parameter of {owner} must be a 1-D array of numeric "
                              f"per-seed scores. Got {x!r} instead.") from None
    if arr.ndim != 1:
        raise ValidationError(f"The {name!r} parameter of {owner} must be a 1-D array of per-seed "
                              f"scores. Got shape {arr.shape} instead.")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValidationError(f"The {name!r} scores of {owner} are NaN or inf at positions "
                              f"{bad.tolist()}; every trial needs a finite score.")
    return arr


def paired_arrays(a: Any, b: Any, owner: str, least: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` as finite 1-D float arrays of equal length, at least ``least`` long (else refused)."""
    a, b = _scores(a, "a", owner), _scores(b, "b", owner)
    if a.size != b.size:
        raise ValidationError(f"{owner} needs one score per trial on both sides, paired by seed. "
                              f"Got {a.size} scores in 'a' and {b.size} in 'b' instead.")
    if a.size < least:
        raise ValidationError(f"{owner} needs at least {least} paired trials. Got {a.size} instead.")
    return a, b


def check_interval(interval: Any, n: int, owner: str) -> str:
    """Refuses an unknown interval, and ``bootstrap`` below :data:`MIN_BOOTSTRAP_TRIALS` trials."""
    check_choice(interval, "interval", owner, INTERVALS)
    if interval == "bootstrap" and n < MIN_BOOTSTRAP_TRIALS:
        raise ValidationError(f"The 'interval' parameter of {owner} is 'bootstrap', which needs at least "
                              f"{MIN_BOOTSTRAP_TRIALS} paired trials; got {n}. With so few trials the "
                              f"resampled means take only a few distinct values and the BCa correction "
                              f"rests on almost nothing: use the t-interval.", param="interval", owner=owner)
    return interval


def bootstrap_interval(diff: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The BCa bootstrap interval of the mean of ``diff`` (``scipy.stats.bootstrap``, fixed seed).

    Constant differences have no spread to resample: their interval is the single value itself.
    """
    if np.ptp(diff) == 0:
        return float(diff[0]), float(diff[0])
    res = stats.bootstrap((diff,), np.mean, confidence_level=confidence, n_resamples=BOOTSTRAP_RESAMPLES,
                          method="BCa", rng=np.random.default_rng(BOOTSTRAP_SEED))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _t_half_width(sd: float, n: int, confidence: float) -> float:
    """Half-width of the t confidence interval of a mean of ``n`` values with sample sd ``sd``."""
    return float(stats.t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)


def summarize(values: Any) -> dict[str, float]:
    """Mean, sample sd, n and ``ci95``, the half-width of the 95% t confidence interval of the mean,
    over the finite ``values`` (sd and ``ci95`` are NaN below two): every report cell and error bar."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = v.size
    if n == 0:
        return {"mean": math.nan, "sd": math.nan, "n": 0, "ci95": math.nan}
    sd = float(v.std(ddof=1)) if n > 1 else math.nan
    return {"mean": float(v.mean()), "sd": sd, "n": int(n), "ci95": _t_half_width(sd, n, 0.95) if n > 1 else math.nan}


def _cohen_dz(mean: float, sd: float) -> float:
    if sd > 0:
        return mean / sd
    return math.copysign(math.inf, mean) if mean != 0 else math.nan


def paired_test(a: Any, b: Any, *, alternative: str = "greater", test: str = "t",
                alpha: float = 0.05, confidence: float = 0.95, interval: str = "t") -> PairedTest:
    """Tests whether scores ``a`` beat scores ``b`` over the same trials (paired by position).

    The defaults are the paper's: a one-tailed matched-pair t-test (``scipy.stats.ttest_rel``) at
    0.05. ``test="wilcoxon"`` (``scipy.stats.wilcoxon``) drops the normality assumption, which 20
    F1 differences rarely let one check. The interval is always the two-sided t-interval of the mean
    difference, so it reads as an effect size with its uncertainty whichever test gives the p-value;
    note a one-tailed test at 0.05 matches the lower end of a 90% interval, not a 95% one.

    Args:
        a: Per-seed scores of the first model (e.g. the proposed one).
        b: Per-seed scores of the second model, in the same seed order.
        alternative: "greater" (a > b, the paper), "less" or "two-sided".
        test: "t" or "wilcoxon".
        alpha: Significance level for ``significant``.
        confidence: Coverage of the interval of the mean difference.
        interval: "t" (the t-interval only) or "bootstrap": also the BCa bootstrap interval
            (``boot_low``, ``boot_high``), refused below :data:`MIN_BOOTSTRAP_TRIALS` trials.

    Returns:
        A :class:`PairedTest`. When every difference is the same, the t-test's p-value is what scipy
        gives (0 or 1 for a nonzero constant, NaN when all are zero) and d_z is +/-inf or NaN.

    Raises:
        ValidationError: Bad options, non-finite scores, unequal lengths or fewer than 2 trials.

    Warns:
        TooFewTrialsWarning: Fewer than :data:`MIN_TRIALS` trials.
    """
    owner = "paired_test"
    check_choice(alternative, "alternative", owner, ALTERNATIVES)
    check_choice(test, "test", owner, TESTS)
    alpha = check_float(alpha, "alpha", owner, low=0, high=1, low_open=True, high_open=True)
    confidence = check_float(confidence, "confidence", owner, low=0, high=1, low_open=True,
                             high_open=True)
    a, b = paired_arrays(a, b, owner)
    n = a.size
    check_interval(interval, n, owner)
    if n < MIN_TRIALS:
        warnings.warn(f"Only {n} paired trials: too few trials for the test to mean anything "
                      f"(use at least {MIN_TRIALS}; the paper uses 20).", TooFewTrialsWarning,
                      stacklevel=2)
    diff = a - b
    mean, sd = float(diff.mean()), float(diff.std(ddof=1))
    half = _t_half_width(sd, n, confidence)
    run = stats.ttest_rel if test == "t" else stats.wilcoxon
    res = run(a, b, alternative=alternative)
    p = float(res.pvalue)
    boot = bootstrap_interval(diff, confidence) if interval == "bootstrap" else (math.nan, math.nan)
    return PairedTest(n=n, mean_a=float(a.mean()), mean_b=float(b.mean()), mean_diff=mean, sd_diff=sd,
                      statistic=float(res.statistic), pvalue=p, ci_low=mean - half,
                      ci_high=mean + half, cohen_dz=_cohen_dz(mean, sd), test=test,
                      alternative=alternative, significant=bool(p <= alpha), boot_low=boot[0], boot_high=boot[1])


def _check_correction(method: Any, owner: str) -> str:
    method = method.lower() if isinstance(method, str) else method
    return check_choice(method, "correction", owner, CORRECTIONS)


def correct(pvalues: Sequence[float], method: str = "holm",
            alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Corrects a family of p-values for multiple comparisons.

    Claiming a model beats *every* baseline means testing once per baseline; uncorrected, the chance
    of at least one false claim grows with the number of baselines. Holm controls that family-wise
    error at ``alpha`` and is never less powerful than Bonferroni. "none" reproduces the paper.

    Args:
        pvalues: Raw p-values, one per comparison. NaN (no evidence either way, e.g. identical
            scores) stays NaN and is never rejected, but still counts in the family.
        method: "none" or any method name ``statsmodels.stats.multitest.multipletests`` accepts
            (case-insensitive), e.g. "holm", "bonferroni", "fdr_bh".
        alpha: Family-wise error rate (or FDR for the "fdr_*" methods).

    Returns:
        ``(reject, p_adjusted)``: boolean and float arrays in the input order.
    """
    method = _check_correction(method, "correct")
    alpha = check_float(alpha, "alpha", "correct", low=0, high=1, low_open=True, high_open=True)
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise ValidationError(f"The 'pvalues' parameter of correct must be 1-D. Got shape {p.shape}.")
    known = ~np.isnan(p)
    if ((p[known] < 0) | (p[known] > 1)).any():
        raise ValidationError(f"The 'pvalues' parameter of correct must hold numbers in [0, 1]. "
                              f"Got {p.tolist()} instead.")
    if method == "none" or p.size == 0:
        return p <= alpha, p.copy()
    reject, adjusted, _, _ = multitest.multipletests(np.where(known, p, 1.0), alpha=alpha,
                                                     method=method)
    return reject & known, np.where(known, adjusted, np.nan)


def _label(filt: Mapping[str, Any], reference: Mapping[str, Any]) -> str:
    differing = {k: v for k, v in filt.items() if k not in reference or reference[k] != v}
    return ", ".join(f"{k}={v}" for k, v in (differing or filt).items())


def compare(table: pd.DataFrame, metric: str, proposed: Mapping[str, Any],
            baselines: Sequence[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]], *,
            alternative: str = "greater", test: str = "t", alpha: float = 0.05,
            correction: str = "holm", confidence: float = 0.95, interval: str = "t") -> pd.DataFrame:
    """Tests the proposed model against each baseline on the same seeds, then corrects.

    Defaults follow the paper (one-tailed paired t-test, alpha 0.05) except the correction: the
    paper applies none, avbench applies Holm across the baselines; pass ``correction="none"`` to
    reproduce the paper's ``*``.

    Args:
        table: Tidy results (see :func:`paired_scores`).
        metric: e.g. "macro_f1" or "micro_f1".
        proposed: Column filters selecting the proposed model's scores.
        baselines: Filters for each baseline, as a list (named by the filter values that differ
            from ``proposed``) or as a dict ``{name: filters}``.
        alternative: See :func:`paired_test`.
        test: See :func:`paired_test`.
        alpha: Significance level, used for the raw tests and the correction.
        correction: "none" or a ``multipletests`` method; see :func:`correct`.
        confidence: Coverage of the interval of the mean difference.
        interval: See :func:`paired_test`.

    Returns:
        One row per baseline with columns :data:`COLUMNS`: means, mean difference (proposed minus
        baseline), its interval, Cohen's d_z, raw ``pvalue``, ``p_adjusted`` and ``significant``
        (after correction), and the test, alternative and correction used.
    """
    owner = "compare"
    correction = _check_correction(correction, owner)
    if isinstance(baselines, Mapping):
        named = {str(k): v for k, v in baselines.items()}
    elif isinstance(baselines, Sequence) and not isinstance(baselines, str):
        named = {_label(f, proposed) if isinstance(f, Mapping) else repr(f): f for f in baselines}
        if len(named) != len(baselines):
            raise ValidationError(f"The 'baselines' parameter of {owner} lists the same baseline "
                                  f"twice. Got {list(baselines)!r}.")
    else:
        raise ValidationError(f"The 'baselines' parameter of {owner} must be a list of filter dicts "
                              f"or a dict {{name: filters}}. Got {baselines!r} instead.")
    if not named:
        raise ValidationError(f"The 'baselines' parameter of {owner} must name at least one baseline.")
    rows = []
    for name, filt in named.items():
        if filt == proposed:
            raise ValidationError(f"Baseline {name!r} selects the same rows as the proposed model "
                                  f"({dict(proposed)!r}); a model cannot be its own baseline.")
        pairs = paired_scores(table, metric, proposed, filt)
        res = paired_test(pairs["a"], pairs["b"], alternative=alternative, test=test, alpha=alpha,
                          confidence=confidence, interval=interval)
        rows.append({"baseline": name, **asdict(res)})
    out = pd.DataFrame(rows).rename(columns={"mean_a": "mean_proposed", "mean_b": "mean_baseline"})
    out["significant"], out["p_adjusted"] = correct(out["pvalue"], correction, alpha)
    out["metric"], out["correction"], out["alpha"] = metric, correction, alpha
    out["proposed"] = ", ".join(f"{k}={v}" for k, v in proposed.items())
    return out[list(COLUMNS)]


def significance_mark(comparison: pd.DataFrame, mark: str = "*") -> str:
    """Returns the paper's mark: ``mark`` if the proposed model beats *every* baseline, else "".

    "Beats" means significant after the comparison's correction and in the proposed model's favour
    (a "less" test never earns the mark; a two-sided one needs a positive mean difference). An empty
    comparison earns nothing: there is no claim to mark.

    Args:
        comparison: The output of :func:`compare`, or one group of :func:`compare_all`.
        mark: The symbol to return.
    """
    missing = [c for c in ("baseline", "significant", "alternative", "mean_diff")
               if c not in getattr(comparison, "columns", ())]
    if missing:
        raise ValidationError(f"significance_mark needs the output of compare; the table lacks "
                              f"columns {missing}.")
    repeated = comparison["baseline"][comparison["baseline"].duplicated()]
    if not repeated.empty:
        raise ValidationError(f"significance_mark needs one comparison, but the table repeats "
                              f"baselines {sorted(set(repeated))}; pass one group of compare_all's "
                              f"output at a time.")
    alt = comparison["alternative"]
    better = comparison["significant"].astype(bool) & (
        alt.eq("greater") | (alt.eq("two-sided") & comparison["mean_diff"].gt(0)))
    return mark if len(comparison) and better.all() else ""


def compare_all(table: pd.DataFrame, metric: str, key: str = "model", *, proposed: Any,
                where: Mapping[str, Any] | None = None, alternative: str = "greater",
                test: str = "t", alpha: float = 0.05, correction: str = "holm") -> pd.DataFrame:
    """Runs :func:`compare` in every group: ``proposed`` against every other value of ``key``.

    Groups are the combinations of every column other than ``key``, ``seed``, ``metric`` and
    ``value`` (e.g. corpus x regime x condition), after ``where`` has narrowed the table. Groups
    without the proposed value, or with nothing to compare it to, are skipped. The correction is
    applied within each group, i.e. over the baselines of one table cell, as the paper's ``*`` is.

    Args:
        table: Tidy results (see :func:`paired_scores`).
        metric: e.g. "macro_f1".
        key: The column whose values are compared, e.g. "model".
        proposed: The value of ``key`` to test against all the others, e.g. "auxformer".
        where: Column filters applied first, e.g. ``{"protocol": "default"}``.
        alternative: See :func:`compare`.
        test: See :func:`compare`.
        alpha: See :func:`compare`.
        correction: See :func:`compare`.

    Returns:
        The group columns followed by :func:`compare`'s columns, one row per (group, baseline).
    """
    owner = "compare_all"
    _check_table(table, owner)
    if key not in table.columns or key in ("seed", "metric", "value"):
        raise ValidationError(f"The 'key' parameter of {owner} must be a results column other than "
                              f"seed, metric and value. Got {key!r} instead.")
    rows = _filter(_metric_rows(table, metric), dict(where or {}), "where")
    _filter(rows, {key: proposed}, "proposed")
    by = [c for c in rows.columns if c not in (key, "seed", "metric", "value")]
    groups = rows.groupby(by, dropna=False, sort=True) if by else [((), rows)]
    parts = []
    for values, group in groups:
        others = [v for v in pd.unique(group[key]) if v != proposed]
        if not others or not (group[key] == proposed).any():
            continue
        cell = dict(zip(by, values))
        res = compare(group, metric, {**cell, key: proposed},
                      {str(v): {**cell, key: v} for v in others}, alternative=alternative,
                      test=test, alpha=alpha, correction=correction)
        res["proposed"] = proposed
        parts.append(pd.concat([pd.DataFrame([cell] * len(res)), res], axis=1))
    if not parts:
        raise ValidationError(f"No group holds both {key}={proposed!r} and another {key} to compare "
                              f"it with; check 'where' and the group columns {by}.")
    return pd.concat(parts, ignore_index=True)
