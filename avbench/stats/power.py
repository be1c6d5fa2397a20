"""Power and trial counts: how small a difference a run could detect, and how many trials a wanted one needs.

With 3 quick trials almost nothing is significant, and "not significant" then says little. For each paired
comparison (the tests behind the report's ``*``, in ``stats.csv``) this gives the minimum detectable
difference (MDD) at the run's number of trials, from the observed sd of the paired differences, at the
comparison's own alpha (unadjusted) and power 0.8, one-tailed when the test is; and the number of trials
a difference of ``effect`` would need. statsmodels' ``TTestPower`` (the paired t-test is a one-sample
t-test on the differences) solves both; the Wilcoxon test is planned by the same t-test numbers, which
its asymptotic efficiency (at least 0.864 of the t-test's) makes a mild under-estimate of the trials.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.power import TTestPower

from avbench.validation import ValidationError, check_float

__all__ = ["DEFAULT_EFFECT", "POWER", "POWER_COLUMNS", "add_power", "check_effect", "minimum_detectable_difference",
           "power_summary", "trials_needed", "underpowered_message"]

#: The difference a researcher wants to detect unless told otherwise: 0.01 F1.
DEFAULT_EFFECT = 0.01
POWER = 0.8
#: The columns :func:`add_power` appends to a comparison table.
POWER_COLUMNS = ("power", "mdd", "effect", "trials_needed")
#: Trial counts are searched up to this many; a difference needing more is reported as more.
MAX_TRIALS = 100_000
_ALTERNATIVE = {"greater": "larger", "less": "larger", "two-sided": "two-sided"}  # magnitudes: one tail either way


def check_effect(effect: Any, owner: str) -> float:
    """The difference to detect: a positive score difference below 1."""
    return check_float(effect, "effect", owner, low=0, high=1, low_open=True, high_open=True)


def minimum_detectable_difference(sd: float, n: int, alpha: float = 0.05, power: float = POWER,
                                  alternative: str = "greater") -> float:
    """The smallest mean difference a paired t-test over ``n`` trials detects with ``power``.

    Args:
        sd: Standard deviation of the paired differences (NaN or 0: no answer, NaN).
        n: Paired trials (at least 2).
        alpha: The test's level (per comparison, before any correction).
        power: The wanted probability of detecting it.
        alternative: The test's alternative: "greater"/"less" (one tail) or "two-sided".

    >>> round(minimum_detectable_difference(0.02, 20), 4)  # one-tailed at 0.05
    0.0115
    """
    if not (n >= 2 and math.isfinite(sd) and sd > 0):
        return math.nan
    d = TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power,
                                 alternative=_ALTERNATIVE[alternative])
    return float(np.asarray(d).item()) * sd


def trials_needed(sd: float, effect: float, alpha: float = 0.05, power: float = POWER,
                  alternative: str = "greater") -> float:
    """The number of paired trials at which a mean difference of ``effect`` is detected with ``power``.

    Returns NaN without a positive sd, and ``inf`` beyond :data:`MAX_TRIALS`.

    >>> trials_needed(0.02, 0.01)  # d_z = 0.5, one-tailed at 0.05
    27
    """
    if not (math.isfinite(sd) and sd > 0):
        return math.nan
    d = effect / sd
    alt = _ALTERNATIVE[alternative]

    def enough(n: int) -> bool:
        return float(TTestPower().power(d, n, alpha, alternative=alt)) >= power

    # power grows with n: double, then bisect (statsmodels' own solve_power for nobs gives up, NaN, when the
    # answer is below its first bracket, as for an effect many sds large)
    if not enough(MAX_TRIALS):
        return math.inf
    lo, hi = 1, 2
    while not enough(hi):
        lo, hi = hi, min(2 * hi, MAX_TRIALS)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid, hi)
    return hi


def add_power(comparisons: pd.DataFrame, effect: float = DEFAULT_EFFECT, power: float = POWER) -> pd.DataFrame:
    """Appends :data:`POWER_COLUMNS` to comparisons with columns ``n``, ``sd_diff``, ``alpha``, ``alternative``.

    ``mdd`` is the minimum detectable difference at the row's n; ``trials_needed`` the trials a difference of
    ``effect`` needs (both at the row's unadjusted alpha, one-tailed when its test is).
    """
    effect = check_effect(effect, "add_power")
    missing = [c for c in ("n", "sd_diff", "alpha", "alternative") if c not in comparisons.columns]
    if missing:
        raise ValidationError(f"add_power needs the comparison columns n, sd_diff, alpha and alternative "
                              f"(avbench.stats.compare's output); the table lacks {missing}.")
    out = comparisons.copy()
    cache: dict[tuple, tuple[float, float]] = {}
    mdd, need = [], []
    for n, sd, alpha, alt in zip(out["n"], out["sd_diff"], out["alpha"], out["alternative"]):
        key = (int(n), float(sd), float(alpha), str(alt))
        if key not in cache:
            cache[key] = (minimum_detectable_difference(key[1], key[0], key[2], power, key[3]),
                          trials_needed(key[1], effect, key[2], power, key[3]))
        mdd.append(cache[key][0])
        need.append(cache[key][1])
    out["power"], out["mdd"], out["effect"], out["trials_needed"] = power, mdd, effect, need
    return out


def power_summary(comparisons: pd.DataFrame) -> dict[str, float]:
    """The typical comparison of a table with :data:`POWER_COLUMNS`: trials, median MDD and trials needed,
    and the share of comparisons whose MDD exceeds the effect (underpowered). Medians skip NaN rows."""
    rows = comparisons[np.isfinite(comparisons["mdd"].astype(float))]
    if rows.empty:
        return {"n": math.nan, "mdd": math.nan, "trials_needed": math.nan, "effect": math.nan,
                "underpowered": math.nan, "comparisons": 0}
    values = list(rows["n"])
    need = rows["trials_needed"].astype(float)
    return {"n": int(max(set(values), key=values.count)), "mdd": float(rows["mdd"].median()),
            "trials_needed": float(need.median()), "effect": float(rows["effect"].iloc[0]),
            "underpowered": float((rows["mdd"] > rows["effect"]).mean()), "comparisons": int(len(rows))}


def underpowered_message(comparisons: pd.DataFrame, unit: str = "F1") -> str | None:
    """One line when most comparisons could not detect the wanted effect, else None.

    >>> t = pd.DataFrame({"n": [3, 3], "sd_diff": [0.02, 0.03], "alpha": 0.05, "alternative": "greater"})
    >>> underpowered_message(add_power(t, effect=0.01))
    'with 3 trials, differences below 0.057 F1 cannot be detected at power 0.8; 42 trials would be needed for 0.01'
    """
    if comparisons.empty or "mdd" not in comparisons.columns:
        return None
    s = power_summary(comparisons)
    if not s["comparisons"] or s["underpowered"] <= 0.5:
        return None
    need = s["trials_needed"]
    need_text = "more than 100000" if math.isinf(need) else f"{need:.0f}"
    return (f"with {s['n']} trials, differences below {s['mdd']:.3f} {unit} cannot be detected at power "
            f"{POWER:g}; {need_text} trials would be needed for {s['effect']:g}")
