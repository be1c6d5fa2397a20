"""Tests for avbench.stats: agreement with scipy/statsmodels, null and power simulations, refusals."""

from __future__ import annotations

import gc
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats
from statsmodels.stats import multitest
from statsmodels.stats.weightstats import DescrStatsW

from avbench.stats import (CORRECTIONS, TooFewTrialsWarning, compare, compare_all, correct,
                           paired_scores, paired_test, significance_mark)
from avbench.validation import ValidationError

RNG = np.random.default_rng(20220101)
A = 0.60 + 0.03 * RNG.standard_normal(20)
B = A - 0.01 + 0.02 * RNG.standard_normal(20)
CTX = {"corpus": "crema-d", "variant": "", "regime": "optimized", "protocol": "default",
       "condition": "av", "level": np.nan}


def tidy(scores: dict[str, np.ndarray], metric: str = "macro_f1", seeds=None, **ctx) -> pd.DataFrame:
    """A tidy results table: one row per (model, seed) with the shared context columns."""
    rows = []
    for model, vals in scores.items():
        for seed, v in zip(range(len(vals)) if seeds is None else seeds, vals):
            rows.append({**CTX, **ctx, "model": model, "seed": seed, "metric": metric, "value": v})
    return pd.DataFrame(rows)


def four_models(shift: float = 0.05, n: int = 20, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    split = 0.03 * rng.standard_normal(n)  # per-seed difficulty shared by every model
    scores = {"auxformer": 0.62 + split + 0.01 * rng.standard_normal(n)}
    for i in (1, 2, 3):
        scores[f"baseline{i}"] = 0.62 - shift + split + 0.01 * rng.standard_normal(n)
    return tidy(scores)


# --- agreement with scipy / statsmodels ---------------------------------------------------------

@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_t_matches_scipy(alternative):
    r = paired_test(A, B, alternative=alternative)
    ref = stats.ttest_rel(A, B, alternative=alternative)
    assert r.statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert r.pvalue == pytest.approx(ref.pvalue, abs=1e-12)
    assert (r.n, r.test, r.alternative) == (20, "t", alternative)
    assert r.significant == (ref.pvalue <= 0.05)


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_wilcoxon_matches_scipy(alternative):
    r = paired_test(A, B, alternative=alternative, test="wilcoxon")
    ref = stats.wilcoxon(A, B, alternative=alternative)
    assert r.statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert r.pvalue == pytest.approx(ref.pvalue, abs=1e-12)


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_ci_matches_statsmodels(confidence):
    r = paired_test(A, B, confidence=confidence)
    low, high = DescrStatsW(A - B).tconfint_mean(alpha=1 - confidence)
    assert (r.ci_low, r.ci_high) == pytest.approx((low, high), abs=1e-12)
    assert r.mean_diff == pytest.approx(np.mean(A - B), abs=1e-12)
    assert (r.mean_a, r.mean_b) == pytest.approx((A.mean(), B.mean()), abs=1e-12)


def test_cohen_dz_by_hand():
    # diff = 1..5: mean 3, sample variance (4+1+0+1+4)/4 = 2.5.
    r = paired_test(np.arange(1, 6) + 10.0, np.full(5, 10.0))
    assert r.cohen_dz == pytest.approx(3 / math.sqrt(2.5), abs=1e-12)


def test_constant_differences():
    base = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's precision-loss note
        up, down, same = (paired_test(base + d, base) for d in (1.0, -1.0, 0.0))
    assert up.cohen_dz == math.inf and up.pvalue == 0.0 and up.significant
    assert down.cohen_dz == -math.inf and down.pvalue == 1.0 and not down.significant
    assert math.isnan(same.cohen_dz) and math.isnan(same.pvalue) and not same.significant
    assert (up.ci_low, up.ci_high) == (1.0, 1.0)


@given(st.lists(st.floats(0, 1), min_size=5, max_size=30), st.integers(0, 2**32 - 1))
@settings(max_examples=40, deadline=None)
def test_one_tailed_p_values_are_complementary(a, seed):
    a = np.array(a)
    b = np.clip(a + np.random.default_rng(seed).normal(0, 0.05, a.size), 0, 1)
    if np.ptp(a - b) < 1e-9:  # constant differences: no variance to test
        return
    g = paired_test(a, b, alternative="greater").pvalue
    assert g + paired_test(a, b, alternative="less").pvalue == pytest.approx(1, abs=1e-9)
    assert g == pytest.approx(paired_test(b, a, alternative="less").pvalue, abs=1e-12)


P = np.array([0.001, 0.012, 0.03, 0.04, 0.2, 0.5, 0.049])


@pytest.mark.parametrize("method", ["holm", "bonferroni", "fdr_bh"])
def test_correct_matches_statsmodels(method):
    reject, adjusted = correct(P, method)
    ref_reject, ref_adjusted, _, _ = multitest.multipletests(P, alpha=0.05, method=method)
    np.testing.assert_allclose(adjusted, ref_adjusted, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(reject, ref_reject)


def test_correct_none_nan_and_names():
    reject, adjusted = correct(P, "none")
    np.testing.assert_array_equal(adjusted, P)
    np.testing.assert_array_equal(reject, P <= 0.05)
    reject, adjusted = correct([0.01, np.nan], "bonferroni")
    assert reject.tolist() == [True, False] and adjusted[0] == 0.02 and np.isnan(adjusted[1])
    aliases = {name for names in getattr(multitest, "_alias_list", []) for name in names}
    assert aliases <= set(CORRECTIONS)
    for name in CORRECTIONS:
        correct(P, name)
    assert correct(P, "HOLM")[1].tolist() == correct(P, "holm")[1].tolist()
    with pytest.raises(ValidationError, match="'holm'.*'fdr_bh'.*Got 'hlm'"):
        correct(P, "hlm")
    with pytest.raises(ValidationError, match=r"\[0, 1\]"):
        correct([0.5, 1.5])


# --- simulations --------------------------------------------------------------------------------

def _null_pairs(rng, reps, n=20, k=1, shift=0.0):
    """reps x n seeds: a shared split effect, then independent model noise (correlated pairs)."""
    split = 0.03 * rng.standard_normal((reps, 1, n))
    models = 0.6 + split + 0.015 * rng.standard_normal((reps, k + 1, n))
    models[:, 0] += shift
    return models


def test_false_positive_rate_under_null():
    reps = 2000
    sims = _null_pairs(np.random.default_rng(1), reps)
    hits = sum(paired_test(s[0], s[1]).significant for s in sims)
    low, high = stats.binom.interval(0.99, reps, 0.05)
    assert low <= hits <= high, hits / reps


def test_power_detects_a_true_shift():
    sims = _null_pairs(np.random.default_rng(2), 300, shift=0.015)  # d_z about 0.7
    power = np.mean([paired_test(s[0], s[1]).significant for s in sims])
    assert power > 0.8


def test_holm_controls_familywise_error():
    reps, k = 600, 3
    sims = _null_pairs(np.random.default_rng(3), reps, k=k)
    raw = np.array([[paired_test(s[0], s[j]).pvalue for j in range(1, k + 1)] for s in sims])
    gc.freeze()  # statsmodels' Holm runs gc.collect() on every call; keep it cheap here
    try:
        holm = sum(correct(p, "holm")[0].any() for p in raw)
    finally:
        gc.unfreeze()
    uncorrected = sum(correct(p, "none")[0].any() for p in raw)
    high = stats.binom.interval(0.99, reps, 0.05)[1]
    assert holm <= high
    assert uncorrected > high  # the simulation can tell: without correction FWER exceeds 0.05


# --- paired_scores and its refusals ------------------------------------------------------------

def test_paired_scores_aligns_by_seed():
    table = tidy({"auxformer": A, "baseline1": B}).sample(frac=1, random_state=0)
    pairs = paired_scores(table, "macro_f1", {"model": "auxformer", "level": np.nan},
                          {"model": "baseline1"})
    assert pairs.columns.tolist() == ["seed", "a", "b"]
    assert pairs["seed"].tolist() == list(range(20))
    np.testing.assert_array_equal(pairs["a"], A)
    np.testing.assert_array_equal(pairs["b"], B)


def test_refuses_different_seed_sets():
    table = pd.concat([tidy({"auxformer": A[:5]}, seeds=[0, 1, 2, 3, 4]),
                       tidy({"baseline1": B[:5]}, seeds=[0, 1, 2, 5, 6])])
    with pytest.raises(ValidationError, match=r"missing on side a .*\[5, 6\].*missing on side b .*\[3, 4\]"):
        paired_scores(table, "macro_f1", {"model": "auxformer"}, {"model": "baseline1"})


def test_refuses_duplicates():
    table = pd.concat([tidy({"auxformer": A, "baseline1": B}),
                       tidy({"auxformer": B[:2]}, regime="standard")])
    with pytest.raises(ValidationError, match=r"seeds \[0, 1\].*differ in \['regime'\]"):
        paired_scores(table, "macro_f1", {"model": "auxformer"}, {"model": "baseline1"})
    with pytest.raises(ValidationError, match="exact duplicates"):
        paired_scores(pd.concat([table, table.iloc[:1]]), "macro_f1",
                      {"model": "baseline1"}, {"model": "auxformer", "regime": "optimized"})


def test_refuses_empty_selection():
    table = tidy({"auxformer": A, "baseline1": B})
    with pytest.raises(ValidationError, match=r"model='auxfomer' matched no rows.*'auxformer'"):
        paired_scores(table, "macro_f1", {"model": "auxfomer"}, {"model": "baseline1"})
    with pytest.raises(ValidationError, match="lacks; its columns"):
        paired_scores(table, "macro_f1", {"modle": "auxformer"}, {"model": "baseline1"})
    with pytest.raises(ValidationError, match=r"metric='micro_f1'.*\['macro_f1'\]"):
        paired_scores(table, "micro_f1", {"model": "auxformer"}, {"model": "baseline1"})


def test_refuses_nan_scores():
    b = B.copy()
    b[[3, 7]] = np.nan
    table = tidy({"auxformer": A, "baseline1": b})
    with pytest.raises(ValidationError, match=r"NaN 'macro_f1' scores for seeds \[3, 7\]"):
        paired_scores(table, "macro_f1", {"model": "auxformer"}, {"model": "baseline1"})
    with pytest.raises(ValidationError, match="NaN or inf at positions"):
        paired_test(A, b)


def test_paired_test_refusals_and_warning():
    with pytest.raises(ValidationError, match="20 scores in 'a' and 19"):
        paired_test(A, B[:19])
    with pytest.raises(ValidationError, match="at least 2"):
        paired_test([0.5], [0.4])
    with pytest.raises(ValidationError, match="'alternative'"):
        paired_test(A, B, alternative="bigger")
    with pytest.raises(ValidationError, match="'test'"):
        paired_test(A, B, test="z")
    with pytest.warns(TooFewTrialsWarning, match="too few trials"):
        paired_test([0.6, 0.7, 0.65], [0.5, 0.6, 0.61])


# --- compare / significance_mark / compare_all -------------------------------------------------

def test_compare_and_mark_when_better_than_every_baseline():
    table = four_models(shift=0.05)
    baselines = [{"model": f"baseline{i}"} for i in (1, 2, 3)]
    out = compare(table, "macro_f1", {"model": "auxformer"}, baselines)
    assert out["baseline"].tolist() == ["model=baseline1", "model=baseline2", "model=baseline3"]
    assert set(out["test"]) == {"t"} and set(out["correction"]) == {"holm"}
    reject, adjusted = correct(out["pvalue"], "holm")
    np.testing.assert_array_equal(out["p_adjusted"], adjusted)
    assert out["significant"].all() and significance_mark(out) == "*"
    pairs = paired_scores(table, "macro_f1", {"model": "auxformer"}, {"model": "baseline2"})
    assert out.loc[1, "pvalue"] == stats.ttest_rel(pairs["a"], pairs["b"], alternative="greater").pvalue


def test_no_mark_when_one_baseline_is_not_worse():
    table = four_models(shift=0.05)
    strong = table[table["model"] == "auxformer"].assign(model="baseline3")
    table = pd.concat([table[table["model"] != "baseline3"], strong])
    table.loc[table["model"] == "baseline3", "value"] += 0.001 * np.random.default_rng(0).standard_normal(20)
    out = compare(table, "macro_f1", {"model": "auxformer"},
                  {"b1": {"model": "baseline1"}, "b2": {"model": "baseline2"},
                   "b3": {"model": "baseline3"}}, correction="none")
    assert out["significant"].tolist()[:2] == [True, True] and not out["significant"].iloc[2]
    assert significance_mark(out) == ""
    assert significance_mark(out.iloc[:2], mark="†") == "†"
    assert significance_mark(out.iloc[:0]) == ""
    assert significance_mark(out.iloc[:2].assign(alternative="less")) == ""


def test_holm_can_remove_the_mark_the_paper_would_give():
    # Raw p-values just under 0.05 for every baseline: the paper's uncorrected test marks it, Holm not.
    rng = np.random.default_rng(5)
    split = 0.03 * rng.standard_normal(20)
    noise = rng.standard_normal((4, 20))
    noise = (noise - noise.mean(1, keepdims=True)) / noise.std(1, ddof=1, keepdims=True)
    t_crit = stats.t.ppf(0.96, 19)  # one-tailed p = 0.04 per baseline
    scores = {"auxformer": 0.6 + split}
    for i in (1, 2, 3):
        d = noise[i] * 0.01
        d = d - d.mean() + t_crit * d.std(ddof=1) / math.sqrt(20)
        scores[f"baseline{i}"] = 0.6 + split - d
    table = tidy(scores)
    baselines = [{"model": f"baseline{i}"} for i in (1, 2, 3)]
    paper = compare(table, "macro_f1", {"model": "auxformer"}, baselines, correction="none")
    np.testing.assert_allclose(paper["pvalue"], 0.04, atol=1e-9)
    assert significance_mark(paper) == "*"
    assert significance_mark(compare(table, "macro_f1", {"model": "auxformer"}, baselines)) == ""


def test_compare_refusals():
    table = four_models()
    with pytest.raises(ValidationError, match="at least one baseline"):
        compare(table, "macro_f1", {"model": "auxformer"}, [])
    with pytest.raises(ValidationError, match="same baseline twice"):
        compare(table, "macro_f1", {"model": "auxformer"}, [{"model": "baseline1"}] * 2)
    with pytest.raises(ValidationError, match="own baseline"):
        compare(table, "macro_f1", {"model": "auxformer"}, [{"model": "auxformer"}])
    with pytest.raises(ValidationError, match="'correction'"):
        compare(table, "macro_f1", {"model": "auxformer"}, [{"model": "baseline1"}], correction="x")


def test_compare_all_groups_and_marks():
    good = four_models(shift=0.05, seed=1)
    tie = four_models(shift=0.0, seed=2).assign(corpus="msp-improv")
    table = pd.concat([good, good.assign(metric="micro_f1"), tie], ignore_index=True)
    out = compare_all(table, "macro_f1", proposed="auxformer", where={"regime": "optimized"})
    assert len(out) == 6 and set(out["proposed"]) == {"auxformer"}
    assert {"corpus", "regime", "condition", "level"} <= set(out.columns)
    marks = {c: significance_mark(g) for c, g in out.groupby("corpus")}
    assert marks == {"crema-d": "*", "msp-improv": ""}
    one = compare(good, "macro_f1", {"model": "auxformer"},
                  {f"baseline{i}": {"model": f"baseline{i}"} for i in (1, 2, 3)})
    np.testing.assert_array_equal(out.loc[out["corpus"] == "crema-d", "p_adjusted"], one["p_adjusted"])
    with pytest.raises(ValidationError, match="repeats baselines"):
        significance_mark(out)
    with pytest.raises(ValidationError, match="model='auxfomer'"):
        compare_all(table, "macro_f1", proposed="auxfomer")


def test_stats_and_the_report_select_rows_by_one_rule():
    """A level filter written 0.3 selects the level 0.1 + 0.2 in the tests as in the report's tables, and
    None selects the missing level (the intact test) in both."""
    from pathlib import Path

    from avbench.report import ReportContext, RunData

    rows = [{"model": m, "condition": c, "level": lv, "seed": s, "metric": "micro_f1", "value": v + 0.01 * s}
            for m, v in (("a", 0.7), ("b", 0.6)) for c, lv in (("full", None), ("mask_audio", 0.1 + 0.2))
            for s in range(5)]
    table = pd.DataFrame(rows)
    ctx = ReportContext(RunData(Path("."), raw=table, table=table))
    for level, condition in ((0.3, "mask_audio"), (None, "full")):
        picked = ctx.select(model="a", level=level)
        assert set(picked["condition"]) == {condition} and len(picked) == 5
        pairs = paired_scores(table, "micro_f1", {"model": "a", "level": level}, {"model": "b", "level": level})
        assert pairs["a"].tolist() == picked["value"].tolist()


# ---------------------------------------------------------------------------- bootstrap intervals
def test_bootstrap_interval_is_scipys_bca():
    rng = np.random.default_rng(5)
    a = rng.normal(0.72, 0.02, 12)
    b = a - rng.normal(0.01, 0.01, 12)
    res = paired_test(a, b, interval="bootstrap")
    ref = stats.bootstrap((a - b,), np.mean, method="BCa", n_resamples=9999, rng=np.random.default_rng(0))
    assert (res.boot_low, res.boot_high) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high))
    assert (res.ci_low, res.ci_high) != pytest.approx((res.boot_low, res.boot_high))  # beside the t-interval
    assert math.isnan(paired_test(a, b).boot_low)


def test_bootstrap_refused_below_ten_trials():
    with pytest.raises(ValidationError, match="at least 10 paired trials"):
        paired_test([0.7] * 9, [0.6] * 9, interval="bootstrap")


def test_every_name_of_the_stats_namespace_resolves_to_its_module():
    """avbench.stats imports its names on first use: the list of names and their homes must agree."""
    import importlib

    import avbench.stats as namespace

    assert sorted(namespace.__all__) == sorted(namespace._HOME)
    for name, home in namespace._HOME.items():
        assert getattr(namespace, name) is getattr(importlib.import_module(f"avbench.stats.{home}"), name)
