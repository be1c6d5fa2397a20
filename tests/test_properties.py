"""Properties that must hold for every input, checked with hypothesis: the masks the test
conditions draw, the shifts, the speaker-independent splits and the paired statistics."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from avbench.conditions import Condition, burst_mask, keep_mask, shift_frames
from avbench.data.splits import make_split
from avbench.stats import paired_scores, paired_test
from avbench.validation import ValidationError

frames = st.integers(1, 400)
fraction = st.floats(0, 1)
seeds = st.integers(0, 2**32 - 1)
SETTINGS = settings(max_examples=60, deadline=None)


# ------------------------------------------------------------------ masks
@given(n=frames, keep=fraction, seed=seeds)
@SETTINGS
def test_keep_mask_keeps_exactly_the_asked_share_and_is_seeded(n, keep, seed):
    m = keep_mask(n, keep, np.random.default_rng(seed))
    assert m.shape == (n,) and m.dtype == bool
    assert m.sum() == int(round(keep * n))
    assert np.array_equal(m, keep_mask(n, keep, np.random.default_rng(seed)))


@given(n=frames, cover=fraction, seed=seeds)
@SETTINGS
def test_burst_mask_removes_one_contiguous_segment_of_the_asked_length(n, cover, seed):
    m = burst_mask(n, cover, np.random.default_rng(seed))
    missing = np.flatnonzero(~m)
    assert len(missing) == int(round(cover * n))
    if len(missing):
        assert missing[-1] - missing[0] + 1 == len(missing)  # contiguous


@given(n=frames, keep=fraction, seed=seeds, dim=st.integers(1, 6))
@SETTINGS
def test_mask_condition_zeroes_whole_frames_and_keeps_the_rest(n, keep, seed, dim):
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32) + 10  # no zero frames
    c = Condition("mask", "visual", keep)
    audio = np.ones((3, 2), np.float32)
    a, y = c.apply(audio, x, rng=c.rng(seed % 1000, "clip"), rates=(62.5, 30.0))
    assert a is audio and y.shape == x.shape
    kept = (y != 0).all(axis=1)
    assert kept.sum() == int(round(keep * n))
    assert np.array_equal(y[kept], x[kept]) and not y[~kept].any()


# ------------------------------------------------------------------ shifts
@given(n=frames, ms=st.floats(-2000, 2000), rate=st.sampled_from([15.625, 30.0, 62.5]))
@SETTINGS
def test_shift_moves_frames_by_whole_steps_and_zero_fills(n, ms, rate):
    x = np.arange(1, n + 1, dtype=np.float32)[:, None]
    c = Condition("shift", "audio", ms)
    y, _ = c.apply(x, x, rng=np.random.default_rng(0), rates=(rate, rate))
    k = shift_frames(ms, rate)
    assert y.shape == x.shape
    for i in range(n):
        j = i - k
        assert y[i, 0] == (x[j, 0] if 0 <= j < n else 0)


@given(n=frames, ms=st.floats(-500, 500), rate=st.sampled_from([30.0, 62.5]))
@SETTINGS
def test_a_shift_and_its_opposite_restore_the_overlap(n, ms, rate):
    x = np.random.default_rng(n).normal(size=(n, 2)).astype(np.float32)
    there, _ = Condition("shift", "audio", ms).apply(x, x, rng=np.random.default_rng(0), rates=(rate, rate))
    back, _ = Condition("shift", "audio", -ms).apply(there, x, rng=np.random.default_rng(0), rates=(rate, rate))
    k = min(abs(shift_frames(ms, rate)), n)  # frames pushed out for good
    keep = slice(0, n - k) if shift_frames(ms, rate) >= 0 else slice(k, n)
    assert np.array_equal(back[keep], x[keep])


# ------------------------------------------------------------------ splits
@given(n_speakers=st.integers(3, 60), clips=st.lists(st.integers(1, 30), min_size=60, max_size=60),
       base=st.integers(0, 2**31), index=st.integers(0, 100))
@SETTINGS
def test_split_rows_partition_the_corpus_by_speaker(n_speakers, clips, base, index):
    speakers = np.repeat([f"s{i}" for i in range(n_speakers)], clips[:n_speakers])
    split = make_split(speakers, index, base)
    rows = split.indices(speakers)
    together = np.sort(np.concatenate(list(rows.values())))
    assert np.array_equal(together, np.arange(len(speakers)))  # every clip exactly once
    owners = [set(speakers[r]) for r in rows.values()]
    assert all(owners) and not (owners[0] & owners[1] or owners[0] & owners[2] or owners[1] & owners[2])
    assert make_split(speakers, index, base) == split  # a pure function of its inputs
    assert make_split(speakers[::-1], index, base) == split  # clip order does not matter


# ------------------------------------------------------------------ paired statistics
scores = st.lists(st.floats(0, 1), min_size=3, max_size=25)


@given(a=scores, delta=st.lists(st.floats(-0.3, 0.3), min_size=25, max_size=25))
@SETTINGS
def test_paired_test_is_antisymmetric_and_its_interval_holds_the_mean(a, delta):
    a = np.array(a)
    b = a + np.array(delta[:len(a)])
    assume(np.std(a - b) > 1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ab = paired_test(a, b, alternative="greater")
        ba = paired_test(b, a, alternative="less")
        two = paired_test(a, b, alternative="two-sided")
    assert ab.pvalue == pytest.approx(ba.pvalue, abs=1e-12)
    assert 0 <= ab.pvalue <= 1 and 0 <= two.pvalue <= 1
    assert ab.ci_low <= ab.mean_diff <= ab.ci_high
    assert math.isclose(ab.mean_diff, float(np.mean(a - b)), abs_tol=1e-12)


@given(a=scores, shift=st.floats(-0.5, 0.5), noise=st.lists(st.floats(-0.2, 0.2), min_size=25, max_size=25))
@SETTINGS
def test_paired_test_ignores_what_both_sides_share(a, shift, noise):
    a = np.array(a)
    b = a - np.array(noise[:len(a)])
    assume(np.std(a - b) > 1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = paired_test(a, b).pvalue
        q = paired_test(a + shift, b + shift).pvalue
    assert p == pytest.approx(q, rel=1e-6, abs=1e-9)


@given(seeds_a=st.sets(st.integers(0, 9), min_size=2), seeds_b=st.sets(st.integers(0, 9), min_size=2))
@SETTINGS
def test_paired_scores_refuse_unpaired_seeds(seeds_a, seeds_b):
    rows = [{"model": m, "seed": s, "metric": "micro_f1", "value": 0.5}
            for m, ss in (("a", seeds_a), ("b", seeds_b)) for s in ss]
    table = pd.DataFrame(rows)
    if seeds_a == seeds_b:
        assert list(paired_scores(table, "micro_f1", {"model": "a"}, {"model": "b"})["seed"]) == sorted(seeds_a)
    else:
        with pytest.raises(ValidationError, match="not paired"):
            paired_scores(table, "micro_f1", {"model": "a"}, {"model": "b"})
