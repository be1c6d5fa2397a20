"""Calibration metrics on hand-worked examples (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avbench.stats import brier_score, expected_calibration_error, negative_log_likelihood
from avbench.validation import ValidationError


def test_ece_equal_mass_bins_by_hand():
    # 30 clips, 15 bins of 2 (equal mass); bin i holds two clips of confidence c_i, one right and one wrong,
    # so each bin's gap is |0.5 - c_i|
    conf = np.repeat(np.linspace(0.55, 0.97, 15), 2)
    probs = np.stack([conf, 1 - conf], axis=1)
    labels = np.tile([0, 1], 15)  # class 0 predicted everywhere: right on even clips, wrong on odd
    expected = np.mean(np.abs(0.5 - np.linspace(0.55, 0.97, 15)))
    assert expected_calibration_error(probs, labels) == pytest.approx(expected)


def test_ece_ties_share_a_bin():
    # confidence 0.8, 8 of 10 right: calibrated, ECE 0 (cutting the ten equal confidences into bins would not be)
    probs = np.tile([0.8, 0.2], (10, 1))
    labels = np.array([0] * 8 + [1] * 2)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0)


def test_brier_and_nll_by_hand():
    probs = [[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]]
    labels = [0, 2]
    # (0.09 + 0.04 + 0.01 + 0.01 + 0.36 + 0.49) / 2 = 0.5
    assert brier_score(probs, labels) == pytest.approx(0.5)
    assert negative_log_likelihood(probs, labels) == pytest.approx(-(math.log(0.7) + math.log(0.3)) / 2)


def test_bad_probabilities_refused():
    with pytest.raises(ValidationError, match="summing to 1"):
        brier_score([[0.5, 0.6]], [0])
    with pytest.raises(ValidationError, match="'labels'"):
        negative_log_likelihood([[0.5, 0.5]], [2])


def test_ece_bins_are_equal_mass_not_equal_width():
    # confidences 0.55 (wrong), 0.60, 0.90, 0.95 (right), 2 bins of 2 clips: gaps |0.5 - 0.575| and |1 - 0.925|,
    # ECE 0.075; one equal-width bin [0.5, 1] would give |0.75 - 0.75| = 0
    probs = [[0.55, 0.45], [0.6, 0.4], [0.9, 0.1], [0.95, 0.05]]
    assert expected_calibration_error(probs, [1, 0, 0, 0], n_bins=2) == pytest.approx(0.075)
