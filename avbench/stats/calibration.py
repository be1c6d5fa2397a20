"""Calibration of predicted class probabilities: expected calibration error, Brier score, negative log-likelihood.

A model can keep its accuracy when a modality is missing and still become over-confident: its top
probability says 0.9 where it is right half the time. These metrics measure that from the softmax
probabilities of each clip (``probs``, clips x classes) and the true labels.

* ECE (Guo et al. 2017) with **15 equal-mass bins**: confidence (the top probability) is cut at its
  1/15, 2/15, ... quantiles, so each bin holds the same number of clips, except that equal confidences
  always share a bin (a bin edge never splits a tie, which would score a calibrated model as miscalibrated);
  ECE is the count-weighted mean of |accuracy - mean confidence| over the bins. Equal-mass bins (rather than 15
  equal-width ones) keep every bin populated when confidences bunch up near 1, which is where a
  missing modality pushes them (Nixon et al. 2019 call this the adaptive ECE).
* Brier score: the mean over clips of the squared distance between ``probs`` and the one-hot label,
  summed over classes (Brier 1950); 0 is perfect, 2 the worst. For two classes this is twice
  scikit-learn's ``brier_score_loss``, which scores the positive class only.
* NLL: the mean of -log p(true class), probabilities clipped at 1e-15 as scikit-learn's ``log_loss`` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from avbench.validation import ValidationError, check_int

__all__ = [
    "ECE_BINS", "brier_score", "calibration_gap", "calibration_metrics", "equal_mass_bins",
    "expected_calibration_error", "negative_log_likelihood", "reliability"
]

ECE_BINS = 15
_EPS = 1e-15


def _check(probs: Any, labels: Any, owner: str) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=float)
    y = np.asarray(labels)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise ValidationError(f"The 'probs' parameter of {owner} must be a clips x classes array with at least "
                              f"one clip and two classes. Got shape {p.shape} instead.", param="probs", owner=owner)
    if y.shape != (p.shape[0],) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= p.shape[1]:
        raise ValidationError(f"The 'labels' parameter of {owner} must hold one class index in [0, {p.shape[1]}) "
                              f"per clip ({p.shape[0]} clips). Got {y.dtype} values of shape {y.shape} instead.",
                              param="labels", owner=owner)
    if not np.isfinite(p).all() or (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-6):
        raise ValidationError(f"The 'probs' parameter of {owner} must hold probabilities: finite, non-negative, "
                              f"each row summing to 1 (a softmax). Got rows summing to "
                              f"{np.unique(np.round(p.sum(axis=1), 6))[:5].tolist()} instead.", param="probs",
                              owner=owner)
    return p, y.astype(int)


def equal_mass_bins(confidence: Any, n_bins: int = ECE_BINS) -> np.ndarray:
    """The bin (0 .. n_bins - 1, in order of confidence) of each confidence: cut at its 1/n_bins, 2/n_bins, ...
    quantiles, a value equal to an edge joining the lower bin, so equal confidences always share a bin.
    Fewer than ``n_bins`` bins are used when ties or few values leave some empty.

    >>> equal_mass_bins([0.9, 0.6, 0.8, 0.7], n_bins=2).tolist()
    [1, 0, 1, 0]
    """
    n_bins = check_int(n_bins, "n_bins", "equal_mass_bins", minimum=1)
    confidence = np.asarray(confidence, dtype=float)
    if confidence.ndim != 1 or confidence.size == 0 or not np.isfinite(confidence).all():
        raise ValidationError(f"The 'confidence' parameter of equal_mass_bins must be a non-empty 1-d array of finite "
                              f"values. Got shape {confidence.shape} instead.", param="confidence",
                              owner="equal_mass_bins")
    edges = np.quantile(confidence, np.linspace(0, 1, n_bins + 1)[1:-1])
    return np.digitize(confidence, edges, right=True)


def reliability(confidence: Any, correct: Any, n_bins: int = ECE_BINS) -> list[tuple[float, float, int]]:
    """A reliability diagram's points: per non-empty equal-mass bin (:func:`equal_mass_bins`), in order of
    confidence, its mean confidence, its accuracy and its number of clips.

    >>> [(round(c, 6), a, n) for c, a, n in reliability([0.9, 0.6, 0.8, 0.7], [1, 0, 1, 0], n_bins=2)]
    [(0.65, 0.0, 2), (0.85, 1.0, 2)]
    """
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    if correct.shape != confidence.shape:
        raise ValidationError(f"The 'correct' parameter of reliability must hold one value per confidence "
                              f"({confidence.shape}). Got shape {correct.shape} instead.", param="correct",
                              owner="reliability")
    bins = equal_mass_bins(confidence, n_bins)
    return [(float(confidence[bins == b].mean()), float(correct[bins == b].mean()), int(np.sum(bins == b)))
            for b in np.unique(bins)]


def calibration_gap(points: list[tuple[float, float, int]]) -> float:
    """The expected calibration error of a reliability diagram's points: the count-weighted mean of
    |accuracy - mean confidence| over the bins.

    >>> round(calibration_gap([(0.65, 0.0, 2), (0.85, 1.0, 2)]), 6)
    0.4
    """
    total = sum(n for _, _, n in points)
    if total == 0:
        raise ValidationError("The 'points' parameter of calibration_gap must hold at least one clip. Got none "
                              "instead.", param="points", owner="calibration_gap")
    return float(sum(n * abs(acc - conf) for conf, acc, n in points) / total)


def expected_calibration_error(probs: Any, labels: Any, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error over ``n_bins`` equal-mass bins of confidence (see the module docstring).

    Confidences 0.6 and 0.7 (both wrong) make one bin, gap 0.65; 0.8 and 0.9 (both right) the other, gap 0.15:

    >>> round(expected_calibration_error([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]], [0, 1, 1, 0], n_bins=2), 6)
    0.4
    """
    n_bins = check_int(n_bins, "n_bins", "expected_calibration_error", minimum=1)
    p, y = _check(probs, labels, "expected_calibration_error")
    return calibration_gap(reliability(p.max(axis=1), p.argmax(axis=1) == y, n_bins))


def brier_score(probs: Any, labels: Any) -> float:
    """Multiclass Brier score: mean over clips of sum over classes of (p - one-hot)^2.

    >>> round(brier_score([[0.9, 0.1], [0.2, 0.8]], [0, 0]), 6)
    0.65
    """
    p, y = _check(probs, labels, "brier_score")
    onehot = np.eye(p.shape[1])[y]
    return float(((p - onehot) ** 2).sum(axis=1).mean())


def negative_log_likelihood(probs: Any, labels: Any) -> float:
    """Mean negative log-probability of the true class (natural log).

    >>> round(negative_log_likelihood([[0.5, 0.5], [0.25, 0.75]], [0, 1]), 6)  # (ln 2 + ln 4/3) / 2
    0.490415
    """
    p, y = _check(probs, labels, "negative_log_likelihood")
    return float(-np.log(np.clip(p[np.arange(len(y)), y], _EPS, 1.0)).mean())


def calibration_metrics(probs: Any, labels: Any, pred: Any = None) -> dict[str, float]:
    """The calibration metrics an evaluation records beside its F1 scores (metric rows ``ece``,
    ``brier`` and ``nll`` of ``results.csv``).

    Args:
        pred: The predicted classes the evaluation scored (the arg-max of the logits): a clip is right
            for the ECE when its prediction is, as for its F1 and the reliability diagram, even where
            float rounding ties two probabilities.  Default: the arg-max of ``probs``.
    """
    p, y = _check(probs, labels, "calibration_metrics")
    right = p.argmax(axis=1) == y if pred is None else np.asarray(pred) == y
    return {"ece": calibration_gap(reliability(p.max(axis=1), right)), "brier": brier_score(p, y),
            "nll": negative_log_likelihood(p, y)}
