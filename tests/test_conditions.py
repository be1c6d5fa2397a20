"""Semantics of the test conditions: what each one does to a clip's frames."""

import numpy as np
import pytest

from avbench.conditions import Condition, expand, keep_mask, shift_frames
from avbench.validation import ValidationError

RATES = (62.5, 30.0)


def clip(n_a=125, n_v=60, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_a, 5)).astype(np.float32) + 3, rng.normal(size=(n_v, 4)).astype(np.float32) + 3


@pytest.mark.parametrize("level", [0.1, 0.3, 0.5, 0.7, 0.9])
@pytest.mark.parametrize("modality", ["audio", "visual"])
def test_masking_level_is_fraction_of_frames_kept(level, modality):
    a, v = clip()
    c = Condition("mask", modality, level)
    a2, v2 = c.apply(a, v, rng=c.rng(0, "clip-1"), rates=RATES)
    x, y, other, other2 = (a, a2, v, v2) if modality == "audio" else (v, v2, a, a2)
    kept = np.any(y != 0, axis=1)
    assert kept.sum() == round(level * len(x))
    np.testing.assert_array_equal(y[kept], x[kept])  # kept frames untouched
    np.testing.assert_array_equal(other2, other)  # the other modality intact


def test_masks_are_seeded_per_trial_clip_condition_and_level():
    c = Condition("mask", "audio", 0.5)
    m1 = keep_mask(100, 0.5, c.rng(3, "a"))
    assert np.array_equal(m1, keep_mask(100, 0.5, c.rng(3, "a")))  # same for every model
    assert not np.array_equal(m1, keep_mask(100, 0.5, c.rng(4, "a")))
    assert not np.array_equal(m1, keep_mask(100, 0.5, c.rng(3, "b")))
    assert not np.array_equal(m1, keep_mask(100, 0.5, Condition("mask", "visual", 0.5).rng(3, "a")))


@pytest.mark.parametrize("modality", ["audio", "visual"])
def test_clipping_zeroes_every_frame_of_one_modality(modality):
    a, v = clip()
    c = Condition("clip", modality)
    a2, v2 = c.apply(a, v, rng=c.rng(0, "x"), rates=RATES)
    gone, kept, orig = (a2, v2, v) if modality == "audio" else (v2, a2, a)
    assert not gone.any() and gone.shape == (a if modality == "audio" else v).shape
    np.testing.assert_array_equal(kept, orig)
    assert c.removes() == {modality}


@pytest.mark.parametrize("ms", [-500, -120, 0, 120, 500])
@pytest.mark.parametrize("modality,rate", [("audio", 62.5), ("visual", 30.0)])
def test_shift_moves_the_right_modality_by_frames_at_its_rate(ms, modality, rate):
    a, v = clip()
    c = Condition("shift", modality, ms)
    a2, v2 = c.apply(a, v, rng=c.rng(0, "x"), rates=RATES)
    x, y = (a, a2) if modality == "audio" else (v, v2)
    np.testing.assert_array_equal(v2 if modality == "audio" else a2, v if modality == "audio" else a)
    k = shift_frames(ms, rate)
    assert k == round(ms * rate / 1000)
    if k >= 0:
        np.testing.assert_array_equal(y[k:], x[:len(x) - k])
        assert not y[:k].any()
    else:
        np.testing.assert_array_equal(y[:k], x[-k:])
        assert not y[k:].any()
    assert y.shape == x.shape


def test_burst_removes_one_contiguous_segment():
    a, v = clip()
    c = Condition("burst", "visual", 0.4)
    _, v2 = c.apply(a, v, rng=c.rng(1, "c"), rates=RATES)
    gone = np.flatnonzero(~np.any(v2 != 0, axis=1))
    assert len(gone) == round(0.4 * len(v))
    assert np.all(np.diff(gone) == 1)


def test_noise_has_requested_snr():
    a = np.random.default_rng(0).normal(size=(20000, 4)).astype(np.float32)
    c = Condition("noise", "audio", 10.0)
    a2, _ = c.apply(a, a[:3], rng=c.rng(0, "x"), rates=RATES)
    snr = 10 * np.log10(np.mean(a.astype(np.float64) ** 2) / np.mean((a2 - a).astype(np.float64) ** 2))
    assert abs(snr - 10.0) < 0.2


def test_expand_and_validation():
    conds = expand({"kind": "mask", "modality": "visual", "levels": [0.1, 0.9]})
    assert [c.key for c in conds] == ["mask_visual@0.1", "mask_visual@0.9"]
    with pytest.raises(ValidationError, match="'modality'.*'audio', 'visual'.*Got 'face'"):
        expand({"kind": "clip", "modality": "face"})
    with pytest.raises(ValidationError, match="'levels'"):
        expand({"kind": "mask", "modality": "audio", "levels": [1.5]})
    with pytest.raises(ValidationError, match="'kind'"):
        expand({"kind": "blur", "modality": "audio"})
