"""avbench's statistics engine, importable as one namespace (``from avbench.stats import ...``).

* :mod:`avbench.stats.paired`: paired tests of one model against baselines per cell, as the paper's ``*``.
* :mod:`avbench.stats.ranking`: ranking models across conditions (Friedman, Nemenyi CD, Wilcoxon + Holm).
* :mod:`avbench.stats.bayes`: Bayesian comparison with a region of practical equivalence (ROPE).
* :mod:`avbench.stats.power`: minimum detectable difference and trials needed per comparison.
* :mod:`avbench.stats.calibration`: expected calibration error, Brier score, negative log-likelihood.

What needs the optional extra ``avbench[stats]`` (scikit-posthocs, baycomp) imports it when called and
otherwise raises :class:`~avbench.stats.extra.MissingExtra`, which names the extra.
"""

from avbench.stats.bayes import (DEFAULT_ROPE, BayesComparison, check_rope, correlated_t, signed_rank,
                                 t_posterior)
from avbench.stats.calibration import brier_score, expected_calibration_error, negative_log_likelihood
from avbench.stats.extra import MissingExtra
from avbench.stats.paired import (ALTERNATIVES, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, COLUMNS, CORRECTION_NAMES,
                                  CORRECTIONS, INTERVALS, MIN_BOOTSTRAP_TRIALS, MIN_TRIALS, TESTS, PairedTest,
                                  TooFewTrialsWarning, bootstrap_interval, check_interval, compare, compare_all,
                                  correct, paired_arrays, paired_scores, paired_test, significance_mark, summarize)
from avbench.stats.power import (DEFAULT_EFFECT, POWER_COLUMNS, add_power, check_effect,
                                 minimum_detectable_difference, power_summary, trials_needed, underpowered_message)
from avbench.stats.ranking import MIN_BLOCKS, MIN_MODELS, Ranking, critical_difference, iman_davenport, rank_models

__all__ = [
    "ALTERNATIVES", "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "COLUMNS", "CORRECTION_NAMES", "CORRECTIONS",
    "DEFAULT_EFFECT", "DEFAULT_ROPE", "INTERVALS", "MIN_BLOCKS", "MIN_BOOTSTRAP_TRIALS", "MIN_MODELS", "MIN_TRIALS",
    "POWER_COLUMNS", "TESTS", "BayesComparison", "MissingExtra", "PairedTest", "Ranking", "TooFewTrialsWarning",
    "add_power", "bootstrap_interval", "brier_score", "check_effect", "check_interval", "check_rope", "compare",
    "compare_all", "correct", "correlated_t", "critical_difference", "expected_calibration_error", "iman_davenport",
    "minimum_detectable_difference", "negative_log_likelihood", "paired_arrays", "paired_scores", "paired_test",
    "power_summary", "rank_models", "signed_rank", "significance_mark", "summarize", "t_posterior", "trials_needed",
    "underpowered_message",
]
