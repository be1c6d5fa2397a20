"""Bayesian comparison with a ROPE: the t posterior against scipy, the signed-rank test against baycomp, properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats as sst

from avbench.stats import MissingExtra, correlated_t, signed_rank, t_posterior
from avbench.validation import ValidationError

A = np.array([0.712, 0.735, 0.701, 0.744, 0.728, 0.719])
B = np.array([0.700, 0.712, 0.705, 0.720, 0.709, 0.714])

scores = st.lists(st.floats(0.3, 0.9, allow_nan=False), min_size=3, max_size=8)


def test_t_posterior_is_scipys_student_t():
    d = A - B
    n = len(d)
    post = t_posterior(A, B)
    ref = sst.t(df=n - 1, loc=d.mean(), scale=d.std(ddof=1) / math.sqrt(n))
    xs = np.linspace(-0.05, 0.05, 11)
    np.testing.assert_allclose(post.cdf(xs), ref.cdf(xs))
    r = correlated_t(A, B, rope=0.01)
    assert r.p_better == pytest.approx(ref.sf(0.01))
    assert r.p_worse == pytest.approx(ref.cdf(-0.01))
    assert r.p_rope == pytest.approx(ref.cdf(0.01) - ref.cdf(-0.01))
    # with a ROPE of almost 0 the posterior P(a better) is the one-tailed t-test's 1 - p (flat prior, Benavoli 2017)
    assert correlated_t(A, B, rope=1e-12).p_better == pytest.approx(1 - sst.ttest_rel(A, B, alternative="greater").pvalue)


def test_constant_differences_put_all_mass_on_their_value():
    r = correlated_t(B + 0.02, B, rope=0.01)
    assert (r.p_better, r.p_rope, r.p_worse) == (1.0, 0.0, 0.0)
    assert correlated_t(B, B, rope=0.01).p_rope == 1.0


@pytest.mark.parametrize("rope", [0, -0.1, 1, 1.5, float("nan")])
def test_rope_out_of_range_refused(rope):
    with pytest.raises(ValidationError, match="'rope'"):
        correlated_t(A, B, rope=rope)


def test_signed_rank_is_baycomps_output():
    baycomp = pytest.importorskip("baycomp")
    x, y = A[:5] * 1.0, B[:5] * 1.0
    ours = signed_rank(x, y, rope=0.005, random_state=7, nsamples=2000)
    ref = baycomp.SignedRankTest.probs(x, y, rope=0.005, random_state=7, nsamples=2000)
    assert (ours.p_better, ours.p_rope, ours.p_worse) == pytest.approx(tuple(ref))
    # baycomp's README example, the other way round: its first probability is "x better".  When every difference
    # is far above the ROPE in x's favour, x wins (Benavoli et al. 2017: the posterior mass moves left).
    far = signed_rank(B + 0.2, B, rope=0.01, nsamples=2000)
    assert far.p_better > 0.95 and far.p_worse == 0.0


def test_signed_rank_without_the_extra(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "baycomp", None)
    with pytest.raises(MissingExtra, match=r"avbench\[stats\]"):
        signed_rank(A, B)


@settings(max_examples=40, deadline=None)
@given(scores, st.data(), st.floats(0.001, 0.2))
def test_swapping_models_mirrors_the_t_posterior(a, data, rope):
    b = data.draw(st.lists(st.floats(0.3, 0.9, allow_nan=False), min_size=len(a), max_size=len(a)))
    ab, ba = correlated_t(a, b, rope), correlated_t(b, a, rope)
    assert (ab.p_better, ab.p_rope, ab.p_worse) == pytest.approx((ba.p_worse, ba.p_rope, ba.p_better), abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(scores, st.data(), st.floats(0.001, 0.1), st.floats(1.0, 5.0))
def test_wider_rope_never_lowers_p_equivalent(a, data, rope, factor):
    b = data.draw(st.lists(st.floats(0.3, 0.9, allow_nan=False), min_size=len(a), max_size=len(a)))
    wide = min(rope * factor, 0.99)
    assert correlated_t(a, b, wide).p_rope >= correlated_t(a, b, rope).p_rope - 1e-12


@settings(max_examples=15, deadline=None)
@given(scores, st.data(), st.floats(0.001, 0.1), st.floats(1.0, 5.0))
def test_signed_rank_properties(a, data, rope, factor):
    pytest.importorskip("baycomp")
    b = data.draw(st.lists(st.floats(0.3, 0.9, allow_nan=False), min_size=len(a), max_size=len(a)))
    narrow = signed_rank(a, b, rope, nsamples=300)
    wide = signed_rank(a, b, min(rope * factor, 0.99), nsamples=300)  # the same seed: the same Dirichlet draws
    assert wide.p_rope >= narrow.p_rope
    mirrored = signed_rank(b, a, rope, nsamples=300)
    # baycomp counts the most probable region per draw; where "a better" and "b better" tie exactly, argmax takes
    # the first, so mirroring holds up to those ties
    assert mirrored.p_rope == pytest.approx(narrow.p_rope)
    assert mirrored.p_better + mirrored.p_worse == pytest.approx(narrow.p_better + narrow.p_worse)
