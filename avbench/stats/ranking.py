"""Ranking models across conditions: Friedman test, Nemenyi critical difference, Wilcoxon + Holm.

The per-cell tests of :mod:`avbench.stats.paired` answer "is the proposed model better here?". Across
all conditions and corpora the question is "which models really differ?", which Demsar (JMLR 2006)
answers by ranking the models within each *block* (a data set there; here a corpus x condition cell,
scored by the mean over trials), testing whether the mean ranks differ at all (Friedman, and Iman and
Davenport's F form of it), then testing pairs post hoc: Nemenyi's test, whose critical difference (CD)
draws the classic CD diagram, and the Wilcoxon signed-rank test with Holm's correction, which Benavoli
et al. (JMLR 2016) recommend because its outcome for two models does not depend on which other
models are in the comparison.

scipy gives Friedman's chi-square (with the tie correction R's ``friedman.test`` also applies) and
the studentized range; scikit-posthocs (the optional extra ``avbench[stats]``) gives the Nemenyi and
pairwise Wilcoxon p-values. Written here: the Iman-Davenport F and the CD (one formula each, which no
library returns as a number), and the groups of models not significantly different.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from avbench.stats.extra import require
from avbench.stats.paired import _check_table, _filter, _metric_rows
from avbench.validation import ValidationError, check_choice, check_float

__all__ = ["MIN_BLOCKS", "MIN_MODELS", "POSTHOCS", "Ranking", "critical_difference", "iman_davenport",
           "rank_models"]

#: Below these a ranking says nothing (Friedman needs 3 models; 5 blocks is the least for which the
#: Wilcoxon signed-rank test can reach p < 0.05 two-sided at all: 2/2^5 = 0.0625 > 0.05 needs n >= 6, so 5
#: is already generous).
MIN_MODELS = 3
MIN_BLOCKS = 5
POSTHOCS = ("nemenyi", "wilcoxon")


def iman_davenport(chi2: float, n_blocks: int, n_models: int) -> tuple[float, float]:
    """Iman and Davenport's F statistic from Friedman's chi-square (Demsar 2006, Sec. 3.2.2), and its p-value.

    F_F = (N - 1) chi2 / (N (k - 1) - chi2), with k - 1 and (k - 1)(N - 1) degrees of freedom; less
    conservative than the chi-square itself.

    >>> [round(x, 2) for x in iman_davenport(9.28, 14, 4)]  # Demsar (2006), p. 13: F_F = 3.69
    [3.69, 0.02]
    """
    n, k = n_blocks, n_models
    denominator = n * (k - 1) - chi2
    if not math.isfinite(chi2):
        return math.nan, math.nan
    if denominator <= 0:  # every block ranks the models the same way
        return math.inf, 0.0
    f = (n - 1) * chi2 / denominator
    return float(f), float(stats.f.sf(f, k - 1, (k - 1) * (n - 1)))


def critical_difference(n_models: int, n_blocks: int, alpha: float = 0.05) -> float:
    """Nemenyi's critical difference of mean ranks: q_alpha sqrt(k (k + 1) / (6 N)) (Demsar 2006, Sec. 3.2.2).

    q_alpha is the studentized range quantile for k groups and infinite degrees of freedom, over sqrt(2).

    >>> round(critical_difference(4, 14, 0.05), 2), round(critical_difference(4, 14, 0.10), 2)  # Demsar's example
    (1.25, 1.12)
    """
    k, n = n_models, n_blocks
    q = float(stats.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    return q * math.sqrt(k * (k + 1) / (6 * n))


@dataclass(frozen=True)
class Ranking:
    """The outcome of :func:`rank_models`.

    Attributes:
        scores: Blocks x models: each model's mean score over trials in each block.
        mean_ranks: Mean rank of each model over the blocks (1 = best), best first.
        friedman_chi2: Friedman's chi-square (tie-corrected, as scipy and R compute it).
        friedman_p: Its p-value.
        iman_davenport_f: Iman-Davenport's F form of the same test.
        iman_davenport_p: Its p-value.
        critical_difference: Nemenyi's CD at ``alpha``: mean ranks further apart differ significantly.
        nemenyi_p: Models x models p-values of the Nemenyi test.
        wilcoxon_p: Models x models p-values of the two-sided Wilcoxon signed-rank test over blocks,
            Holm-corrected over all pairs.
        alpha: The significance level of the groups and the CD.
        dropped: Models left out, with the reason (not scored in every block).
    """

    scores: pd.DataFrame
    mean_ranks: pd.Series
    friedman_chi2: float
    friedman_p: float
    iman_davenport_f: float
    iman_davenport_p: float
    critical_difference: float
    nemenyi_p: pd.DataFrame
    wilcoxon_p: pd.DataFrame
    alpha: float
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def n_blocks(self) -> int:
        return int(self.scores.shape[0])

    @property
    def n_models(self) -> int:
        return int(self.scores.shape[1])

    def pvalues(self, posthoc: str = "nemenyi") -> pd.DataFrame:
        """The post-hoc p-values: ``nemenyi`` or ``wilcoxon`` (Holm-corrected)."""
        check_choice(posthoc, "posthoc", "Ranking.pvalues", POSTHOCS)
        return self.nemenyi_p if posthoc == "nemenyi" else self.wilcoxon_p

    def groups(self, posthoc: str = "nemenyi") -> list[list[str]]:
        """Groups of models whose mean ranks do not differ significantly, as the bars of a CD diagram.

        Each group is a maximal run of models, consecutive in rank order, no two of which differ at
        ``alpha``; a model no other joins forms a group alone. For Nemenyi a significant difference only
        grows with the rank distance, so runs are exact; for Wilcoxon they are the usual reading.
        """
        p = self.pvalues(posthoc)
        order = list(self.mean_ranks.index)
        found: list[list[str]] = []
        for i in range(len(order)):
            j = i
            while j + 1 < len(order) and all(p.loc[order[m], order[j + 1]] >= self.alpha for m in range(i, j + 1)):
                j += 1
            group = order[i:j + 1]
            if not any(set(group) <= set(g) for g in found):
                found.append(group)
        return found


def _block_matrix(rows: pd.DataFrame, blocks: list[str], model: str) -> tuple[pd.DataFrame, dict[str, str]]:
    grouped = rows.groupby(blocks + [model], dropna=False, observed=True)["value"]
    # a NaN trial makes its block's mean unknown rather than the mean of the other trials
    means = grouped.mean().where(grouped.count() == grouped.size()).unstack(model)
    means.index = [" / ".join("–" if pd.isna(v) else str(v) for v in (key if isinstance(key, tuple) else (key,)))
                   for key in means.index]
    dropped = {}
    for m in means.columns:
        missing = int(means[m].isna().sum())
        if missing:
            dropped[str(m)] = f"not scored (or a NaN score) in {missing} of {len(means)} blocks"
    means = means.dropna(axis=1)
    means.columns = [str(c) for c in means.columns]
    return means, dropped


def rank_models(table: pd.DataFrame, metric: str, blocks: Sequence[str] = ("corpus", "condition"), *,
                model: str = "model", where: Mapping[str, Any] | None = None, alpha: float = 0.05,
                higher_is_better: bool = True) -> Ranking:
    """Ranks models across blocks of conditions: Friedman test, then Nemenyi and Wilcoxon-Holm post hoc.

    Args:
        table: Tidy results (columns ``seed``, ``metric``, ``value``, the ``blocks`` and ``model``).
        metric: The score to rank by, e.g. "micro_f1" or "auc_micro_f1".
        blocks: The columns whose values make one block, e.g. ``("corpus", "condition", "level")``.
            Each model's score in a block is its mean over the block's rows (trials).
        model: The column naming what is ranked.
        where: Column filters applied first (e.g. ``{"regime": "optimized", "variant": "default"}``).
        alpha: Significance level of the CD and of the groups.
        higher_is_better: Rank 1 goes to the highest score (False: to the lowest, e.g. an error rate).

    Returns:
        A :class:`Ranking` over the models scored in every block (the others are in ``dropped``).

    Raises:
        ValidationError: Unknown columns, a filter matching nothing, or fewer than :data:`MIN_MODELS`
            models scored in every block or fewer than 2 blocks.
        MissingExtra: scikit-posthocs (the optional extra ``avbench[stats]``) is not installed.

    Example:
        Demsar's (2006) worked example is in tests/test_ranking.py; a small one:

        >>> import pandas as pd
        >>> t = pd.DataFrame([{"model": m, "condition": c, "seed": 0, "metric": "f1", "value": v}
        ...                   for c in range(6) for m, v in (("a", 0.9 - c / 100), ("b", 0.8), ("c", 0.7 + c / 1000))])
        >>> r = rank_models(t, "f1", blocks=["condition"])
        >>> r.mean_ranks.to_dict(), round(r.friedman_chi2, 2), r.groups()
        ({'a': 1.0, 'b': 2.0, 'c': 3.0}, 12.0, [['a', 'b'], ['b', 'c']])
    """
    owner = "rank_models"
    _check_table(table, owner)
    alpha = check_float(alpha, "alpha", owner, low=0, high=1, low_open=True, high_open=True)
    blocks = [blocks] if isinstance(blocks, str) else list(blocks)
    unknown = [c for c in blocks + [model] if c not in table.columns]
    if unknown or not blocks:
        raise ValidationError(f"The 'blocks' and 'model' parameters of {owner} must name columns of the results "
                              f"table; {unknown or 'no block column'} given, its columns are {list(table.columns)}.",
                              param="blocks", owner=owner)
    rows = _filter(_metric_rows(table, metric), dict(where or {}), "where")
    scores, dropped = _block_matrix(rows, blocks, model)
    k, n = scores.shape[1], scores.shape[0]
    if k < MIN_MODELS or n < 2:
        raise ValidationError(f"{owner} needs at least {MIN_MODELS} models scored in every block and 2 blocks; "
                              f"got {k} model(s) ({', '.join(scores.columns) or 'none'}) over {n} block(s) of "
                              f"{blocks}" + (f"; left out: {dropped}" if dropped else "") + ".")
    values = scores.to_numpy(dtype=float)
    ranks = stats.rankdata(-values if higher_is_better else values, axis=1, method="average")
    mean_ranks = pd.Series(ranks.mean(axis=0), index=scores.columns).sort_values(kind="stable")
    with warnings.catch_warnings():  # constant blocks: scipy divides 0 by 0 and says so; the answer is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        chi2, p = stats.friedmanchisquare(*values.T)
    f, pf = iman_davenport(float(chi2), n, k)
    sp = require("scikit_posthocs", "Post-hoc tests of a ranking (Nemenyi, Wilcoxon)")
    nemenyi = sp.posthoc_nemenyi_friedman(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # identical columns: scipy's 0/0, p = 1 for those pairs
        wilcoxon = sp.posthoc_wilcoxon([values[:, j] for j in range(k)], p_adjust="holm")
    names = list(scores.columns)
    nemenyi = pd.DataFrame(nemenyi.to_numpy(), index=names, columns=names).fillna(1.0)
    wilcoxon = pd.DataFrame(wilcoxon.to_numpy(), index=names, columns=names).fillna(1.0)
    return Ranking(scores, mean_ranks, float(chi2), float(p), f, pf, critical_difference(k, n, alpha), nemenyi,
                   wilcoxon, alpha, dropped)
