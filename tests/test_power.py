"""Power and trial counts, checked against the noncentral t distribution directly (scipy), not statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sst

from avbench.stats import add_power, minimum_detectable_difference, trials_needed, underpowered_message
from avbench.validation import ValidationError


def t_power(diff: float, sd: float, n: int, alpha: float = 0.05, one_tailed: bool = True) -> float:
    """Power of the paired t-test: P(T > t_crit) with T noncentral t (df n - 1, nc diff / (sd / sqrt n))."""
    df, nc = n - 1, diff / (sd / math.sqrt(n))
    if one_tailed:
        return float(sst.nct.sf(sst.t.ppf(1 - alpha, df), df, nc))
    crit = sst.t.ppf(1 - alpha / 2, df)
    return float(sst.nct.sf(crit, df, nc) + sst.nct.cdf(-crit, df, nc))


@pytest.mark.parametrize("n, sd, one_tailed", [(3, 0.02, True), (20, 0.015, True), (10, 0.03, False)])
def test_mdd_has_power_point_eight(n, sd, one_tailed):
    mdd = minimum_detectable_difference(sd, n, alternative="greater" if one_tailed else "two-sided")
    assert t_power(mdd, sd, n, one_tailed=one_tailed) == pytest.approx(0.8, abs=1e-4)


@pytest.mark.parametrize("sd, effect", [(0.02, 0.01), (0.01, 0.01), (0.05, 0.01), (0.0012, 0.01)])
def test_trials_needed_is_the_first_n_reaching_power(sd, effect):
    n = trials_needed(sd, effect)
    assert t_power(effect, sd, n) >= 0.8
    assert n == 2 or t_power(effect, sd, n - 1) < 0.8  # 2 trials are the least a paired test needs


def test_no_spread_gives_no_answer_and_huge_needs_say_so():
    assert math.isnan(minimum_detectable_difference(0.0, 5)) and math.isnan(trials_needed(float("nan"), 0.01))
    assert trials_needed(10.0, 1e-6) == math.inf


def test_add_power_columns_and_message():
    t = pd.DataFrame({"n": [3, 3, 3], "sd_diff": [0.02, 0.03, 0.0], "alpha": 0.05,
                      "alternative": ["greater", "greater", "two-sided"]})
    out = add_power(t, effect=0.01)
    assert out["mdd"].iloc[0] == pytest.approx(minimum_detectable_difference(0.02, 3))
    assert out["trials_needed"].iloc[1] == trials_needed(0.03, 0.01) and math.isnan(out["mdd"].iloc[2])
    msg = underpowered_message(out)
    assert msg.startswith("with 3 trials, differences below ") and "would be needed for 0.01" in msg
    assert underpowered_message(add_power(t.assign(n=200), effect=0.05)) is None  # well powered: silent


@pytest.mark.parametrize("effect", [0, -0.01, 1])
def test_effect_out_of_range_refused(effect):
    with pytest.raises(ValidationError, match="'effect'"):
        add_power(pd.DataFrame({"n": [3], "sd_diff": [0.1], "alpha": [0.05], "alternative": ["greater"]}), effect)
