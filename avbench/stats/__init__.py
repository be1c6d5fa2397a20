"""avbench's statistics engine, importable as one namespace (``from avbench.stats import ...``).

* :mod:`avbench.stats.paired`: paired tests of one model against baselines per cell, as the paper's ``*``.
* :mod:`avbench.stats.ranking`: ranking models across conditions (Friedman, Nemenyi CD, Wilcoxon + Holm).
* :mod:`avbench.stats.bayes`: Bayesian comparison with a region of practical equivalence (ROPE).
* :mod:`avbench.stats.power`: minimum detectable difference and trials needed per comparison.
* :mod:`avbench.stats.calibration`: expected calibration error, Brier score, negative log-likelihood.

What needs the optional extra ``avbench[stats]`` (scikit-posthocs, baycomp) imports it when called and
otherwise raises :class:`~avbench.stats.extra.MissingExtra`, which names the extra.

The names below are imported from their module when first used (PEP 562), so that a worker that
scores calibration imports :mod:`avbench.stats.calibration` without scipy's and statsmodels' import
time (several seconds per process).
"""

from __future__ import annotations

import importlib
from typing import Any

#: Each public name and the module of the package that defines it.
_HOME = {
    **dict.fromkeys(["BayesComparison", "DEFAULT_ROPE", "check_rope", "correlated_t", "signed_rank",
                     "t_posterior"], "bayes"),
    **dict.fromkeys(["ECE_BINS", "brier_score", "calibration_gap", "calibration_metrics", "equal_mass_bins",
                     "expected_calibration_error", "negative_log_likelihood", "reliability"], "calibration"),
    **dict.fromkeys(["MissingExtra"], "extra"),
    **dict.fromkeys(["ALTERNATIVES", "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "COLUMNS", "CORRECTIONS",
                     "CORRECTION_NAMES", "INTERVALS", "MIN_BOOTSTRAP_TRIALS", "MIN_TRIALS", "PairedTest", "TESTS",
                     "TooFewTrialsWarning", "bootstrap_interval", "check_interval", "compare", "compare_all",
                     "correct", "paired_arrays", "paired_scores", "paired_test", "significance_mark", "summarize"],
                    "paired"),
    **dict.fromkeys(["DEFAULT_EFFECT", "POWER_COLUMNS", "add_power", "check_effect", "minimum_detectable_difference",
                     "power_summary", "trials_needed", "underpowered_message"], "power"),
    **dict.fromkeys(["MIN_BLOCKS", "MIN_MODELS", "Ranking", "critical_difference", "iman_davenport",
                     "rank_models"], "ranking"),
}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'avbench.stats' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"avbench.stats.{_HOME[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
