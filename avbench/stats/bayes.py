"""Bayesian comparison with a region of practical equivalence (ROPE), after Benavoli et al. (JMLR 2017).

A p-value says whether a difference is there, not whether it matters. With a ROPE (differences smaller
than ``rope`` F1 count as "the same in practice") the posterior of the difference answers three
questions at once: P(a better by more than the ROPE), P(within the ROPE), P(b better by more than it).

* One cell (one condition, paired trials): :func:`correlated_t`, the posterior of the mean difference
  over trials, Student t with n - 1 degrees of freedom, location the mean difference and scale
  sd / sqrt(n). This is Benavoli et al.'s correlated t-test with correlation 0: each avbench trial is
  its own speaker-independent split, so the trials do not share training data the way the folds of
  one cross-validation do. baycomp's ``CorrelatedTTest`` takes the correlation from the number of
  folds and cannot express 0, hence the three lines of scipy here.
* Across cells (the per-cell means as paired data): :func:`signed_rank`, baycomp's Bayesian signed-rank
  test (a Dirichlet process posterior), with a fixed ``random_state`` so a report is reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from avbench.stats.extra import require
from avbench.stats.paired import paired_arrays
from avbench.validation import check_float, check_int

__all__ = ["DEFAULT_ROPE", "BayesComparison", "check_rope", "correlated_t", "signed_rank", "t_posterior"]

#: The default ROPE: differences below 0.01 F1 (one point on the paper's percentage scale) are equivalent.
DEFAULT_ROPE = 0.01
#: Monte Carlo samples and seed of the signed-rank posterior (baycomp's default sample count).
SIGNED_RANK_SAMPLES = 50000
SIGNED_RANK_SEED = 0


@dataclass(frozen=True)
class BayesComparison:
    """Posterior probabilities that ``a`` is better than ``b`` by more than the ROPE, equivalent, or worse.

    Attributes:
        p_better: P(a - b > rope).
        p_rope: P(|a - b| <= rope).
        p_worse: P(a - b < -rope).
        rope: The half-width of the region of practical equivalence.
        n: Paired values (trials for :func:`correlated_t`, cells for :func:`signed_rank`).
        mean_diff: Mean of the differences a - b.
        method: ``correlated-t`` or ``signed-rank``.
    """

    p_better: float
    p_rope: float
    p_worse: float
    rope: float
    n: int
    mean_diff: float
    method: str


def check_rope(rope: Any, owner: str) -> float:
    """A ROPE is a score difference strictly between 0 and 1 (F1 and accuracy live in [0, 1])."""
    return check_float(rope, "rope", owner, low=0, high=1, low_open=True, high_open=True)


def t_posterior(a: Any, b: Any) -> Any:
    """The posterior of the mean of ``a - b``: scipy's frozen Student t (n - 1 df, loc mean, scale sd/sqrt(n)).

    Returns None when every difference is the same (no spread: the posterior is a point at that value).
    """
    a, b = paired_arrays(a, b, "t_posterior")
    diff = a - b
    sd = float(diff.std(ddof=1))
    if sd == 0:
        return None
    return stats.t(df=diff.size - 1, loc=float(diff.mean()), scale=sd / math.sqrt(diff.size))


def correlated_t(a: Any, b: Any, rope: float = DEFAULT_ROPE) -> BayesComparison:
    """Bayesian comparison of two models over paired trials (correlated t-test with correlation 0).

    Args:
        a: Per-trial scores of the first model (e.g. the proposed one).
        b: Per-trial scores of the second, in the same trial order.
        rope: Differences within +/- ``rope`` are practically equivalent (0 < rope < 1).

    Returns:
        A :class:`BayesComparison`. Constant differences (no spread) put the whole posterior on their
        value, so one of the three probabilities is 1.

    Example:
        >>> r = correlated_t([0.71, 0.73, 0.70, 0.74], [0.69, 0.70, 0.70, 0.71], rope=0.01)
        >>> round(r.p_better + r.p_rope + r.p_worse, 12), r.p_better > 0.8
        (1.0, True)
    """
    rope = check_rope(rope, "correlated_t")
    a, b = paired_arrays(a, b, "correlated_t")
    mean = float((a - b).mean())
    post = t_posterior(a, b)
    if post is None:
        better, worse = float(mean > rope), float(mean < -rope)
    else:
        better, worse = float(post.sf(rope)), float(post.cdf(-rope))
    return BayesComparison(better, 1.0 - better - worse, worse, rope, int(a.size), mean, "correlated-t")


def signed_rank(a: Any, b: Any, rope: float = DEFAULT_ROPE, *, random_state: int = SIGNED_RANK_SEED,
                nsamples: int = SIGNED_RANK_SAMPLES) -> BayesComparison:
    """Bayesian signed-rank test over paired values, e.g. the per-cell means of two models (baycomp).

    Args:
        a: Values of the first model, one per cell (condition, corpus, ...).
        b: Values of the second, in the same order.
        rope: Half-width of the region of practical equivalence (0 < rope < 1).
        random_state: Seed of baycomp's Monte Carlo sampling (fixed: the same input gives the same answer).
        nsamples: Monte Carlo samples of the Dirichlet process posterior.

    Raises:
        MissingExtra: baycomp (the optional extra ``avbench[stats]``) is not installed.
    """
    owner = "signed_rank"
    rope = check_rope(rope, owner)
    nsamples = check_int(nsamples, "nsamples", owner, minimum=100)
    a, b = paired_arrays(a, b, owner)
    baycomp = require("baycomp", "The Bayesian signed-rank test")
    # baycomp works on y - x: its first probability is "x better", its last "y better"
    better, equivalent, worse = baycomp.SignedRankTest.probs(a, b, rope=rope, random_state=random_state,
                                                             nsamples=nsamples)
    return BayesComparison(float(better), float(equivalent), float(worse), rope, int(a.size),
                           float(np.mean(a - b)), "signed-rank")
