"""avbench.stats.rank_models against Demsar (2006)'s worked example and scikit-posthocs' own output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sst
from statsmodels.stats import multitest

from avbench.stats import MissingExtra, critical_difference, iman_davenport, rank_models
from avbench.validation import ValidationError

sp = pytest.importorskip("scikit_posthocs")

# Demsar (2006), Table 6: AUC of four C4.5 variants on 14 UCI data sets (rows as printed; the same table is in
# several public test suites).  Demsar ranked the unrounded values: voting's 0.975 of C4.5+cf was the higher of
# the two printed 0.975s, which is why his mean ranks are 3.143, 2.000, 2.893, 1.964; we break that tie so.
NAMES = ["C4.5", "C4.5+m", "C4.5+cf", "C4.5+m+cf"]
AUC = np.array([
    [0.763, 0.768, 0.771, 0.798], [0.599, 0.591, 0.590, 0.569], [0.954, 0.971, 0.968, 0.967],
    [0.628, 0.661, 0.654, 0.657], [0.882, 0.888, 0.886, 0.898], [0.936, 0.931, 0.916, 0.931],
    [0.661, 0.668, 0.609, 0.685], [0.583, 0.583, 0.563, 0.625], [0.775, 0.838, 0.866, 0.875],
    [1.000, 1.000, 1.000, 1.000], [0.940, 0.962, 0.965, 0.962], [0.619, 0.666, 0.614, 0.669],
    [0.972, 0.981, 0.9751, 0.975], [0.957, 0.978, 0.946, 0.970]])


def tidy(matrix: np.ndarray, names=NAMES, trials: int = 1) -> pd.DataFrame:
    """One row per (data set, model, trial): the trials of a block average to the matrix's value."""
    rows = []
    for i, row in enumerate(matrix):
        for name, value in zip(names, row):
            for seed in range(trials):
                jitter = (seed - (trials - 1) / 2) * 0.001
                rows.append({"corpus": "c", "condition": f"set{i:02d}", "model": name, "seed": seed,
                             "metric": "auc", "value": value + jitter})
    return pd.DataFrame(rows)


def test_demsar_worked_example():
    r = rank_models(tidy(AUC, trials=3), "auc")
    assert r.n_blocks == 14 and r.n_models == 4
    # the mean ranks Demsar prints (p. 13)
    assert r.mean_ranks.round(3).to_dict() == {"C4.5+m+cf": 1.964, "C4.5+m": 2.0, "C4.5+cf": 2.893, "C4.5": 3.143}
    # his chi2_F = 9.28 is the formula without the tie correction that scipy (and R) apply; undo it: the ties are
    # mushroom (4 equal), lung cancer, iris, primary tumor (2 each)
    ties = (4 ** 3 - 4) + 3 * (2 ** 3 - 2)
    assert r.friedman_chi2 * (1 - ties / (14 * 4 * (4 ** 2 - 1))) == pytest.approx(9.28, abs=0.005)
    assert iman_davenport(9.28, 14, 4)[0] == pytest.approx(3.69, abs=0.005)
    # CD = 2.569 sqrt(4 * 5 / (6 * 14)) = 1.25; 1.12 at alpha 0.10 (Demsar's Fig. 1)
    assert r.critical_difference == pytest.approx(1.25, abs=0.005)
    assert critical_difference(4, 14, 0.10) == pytest.approx(1.12, abs=0.005)
    # "even the difference between the best and the worst is smaller than CD": one group at 0.05 ...
    assert r.groups() == [["C4.5+m+cf", "C4.5+m", "C4.5+cf", "C4.5"]]
    # ... and at 0.10 C4.5 is worse than C4.5+m and C4.5+m+cf, C4.5+cf joins either side (Fig. 1a)
    r10 = rank_models(tidy(AUC), "auc", alpha=0.10)
    assert r10.groups() == [["C4.5+m+cf", "C4.5+m", "C4.5+cf"], ["C4.5+cf", "C4.5"]]


def test_against_scipy_and_scikit_posthocs():
    rng = np.random.default_rng(3)
    matrix = rng.uniform(0.5, 0.9, size=(9, 5)) + np.array([0.0, 0.02, 0.04, 0.06, 0.08])
    names = list("abcde")
    r = rank_models(tidy(matrix, names), "auc")
    assert r.friedman_chi2 == pytest.approx(sst.friedmanchisquare(*matrix.T).statistic)
    ours = r.nemenyi_p.loc[names, names].to_numpy()
    np.testing.assert_allclose(ours, sp.posthoc_nemenyi_friedman(matrix).to_numpy())
    # the pairwise Wilcoxon p-values, Holm-corrected over all pairs, computed directly with scipy and statsmodels
    pairs = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    raw = [sst.wilcoxon(matrix[:, i], matrix[:, j]).pvalue for i, j in pairs]
    adjusted = multitest.multipletests(raw, method="holm")[1]
    for (i, j), p in zip(pairs, adjusted):
        assert r.wilcoxon_p.loc[names[i], names[j]] == pytest.approx(p)
    expected = pd.Series(sst.rankdata(-matrix, axis=1).mean(axis=0), index=names)  # rank 1: the highest score
    pd.testing.assert_series_equal(r.mean_ranks, expected.sort_values(kind="stable"))


def test_lower_is_better_reverses_ranks():
    r = rank_models(tidy(AUC), "auc", higher_is_better=False)
    assert r.mean_ranks.index[0] == "C4.5"


def test_models_missing_from_a_block_are_dropped_and_named():
    t = tidy(AUC)
    t = pd.concat([t, pd.DataFrame([{"corpus": "c", "condition": "set00", "model": "partial", "seed": 0,
                                     "metric": "auc", "value": 0.9}])])
    r = rank_models(t, "auc")
    assert "partial" not in r.mean_ranks.index and "13 of 14" in r.dropped["partial"]
    # a NaN trial leaves its block's score unknown: the model drops out, named, instead of averaging the rest
    t = tidy(AUC, trials=2)
    t.loc[(t["model"] == "C4.5") & (t["condition"] == "set03") & (t["seed"] == 1), "value"] = float("nan")
    with pytest.raises(ValidationError, match="at least 3 models"):
        rank_models(t[t["model"] != "C4.5+cf"], "auc")
    assert "1 of 14" in rank_models(t, "auc").dropped["C4.5"]


def test_too_few_models_or_unknown_columns_refused():
    with pytest.raises(ValidationError, match="at least 3 models"):
        rank_models(tidy(AUC[:, :2], NAMES[:2]), "auc")
    with pytest.raises(ValidationError, match="'blocks'"):
        rank_models(tidy(AUC), "auc", blocks=["nope"])


def test_without_the_extra_a_clear_error(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "scikit_posthocs", None)  # import fails as if not installed
    with pytest.raises(MissingExtra, match=r"avbench\[stats\]"):
        rank_models(tidy(AUC), "auc")
