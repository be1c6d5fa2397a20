"""Speaker-independent splits: properties, determinism, and the shared splits.json."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avbench.data import Split, check_split, generate_synthetic, load_splits, make_split, make_splits
from avbench.validation import ValidationError


def corpus(n_speakers, sizes):
    return np.repeat([f"spk{i}" for i in range(n_speakers)], sizes)


@settings(max_examples=150, deadline=None)
@given(n=st.integers(3, 120), seed=st.integers(0, 2**31), index=st.integers(0, 50),
       sizes=st.lists(st.integers(1, 40), min_size=120, max_size=120))
def test_partitions_are_speaker_independent(n, seed, index, sizes):
    speakers = corpus(n, sizes[:n])
    split = make_split(speakers, index, seed)
    parts = [set(p) for p in (split.train, split.dev, split.test)]
    assert all(parts) and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert set().union(*parts) == set(speakers)
    check_split(split, speakers)
    rows = split.indices(speakers)
    assert sorted(np.concatenate(list(rows.values())).tolist()) == list(range(len(speakers)))
    assert all((np.diff(r) > 0).all() for r in rows.values())
    assert make_split(speakers, index, seed) == split


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), index=st.integers(0, 1000))
def test_clip_shares_near_70_15_15_for_equal_speakers(seed, index):
    speakers = corpus(91, 24)
    rows = make_split(speakers, index, seed).indices(speakers)
    shares = [len(rows[p]) / len(speakers) for p in ("train", "dev", "test")]
    np.testing.assert_allclose(shares, [0.7, 0.15, 0.15], atol=0.012)


def test_splits_differ_and_depend_only_on_inputs():
    speakers = corpus(91, 24)
    splits = make_splits(speakers, 20)
    assert len({s.test for s in splits}) == 20 and len({s.seed for s in splits}) == 20
    assert [s.index for s in splits] == list(range(20))
    assert make_split(np.random.default_rng(0).permutation(speakers), 7) == splits[7]  # order-free
    assert make_split(speakers, 7, base_seed=1) != splits[7]


@pytest.mark.parametrize("kwargs,match", [
    (dict(fractions=(0.7, 0.2, 0.2)), r"The 'fractions' parameter of make_split must be three positive"),
    (dict(fractions=(1.0, 0.0, 0.0)), r"'fractions'.*Got \(1\.0, 0\.0, 0\.0\) instead"),
    (dict(index=-1), r"The 'index' parameter of make_split"),
])
def test_make_split_validates(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        make_split(corpus(10, 3), **{"index": 0, **kwargs})


def test_make_splits_validates_inputs():
    with pytest.raises(ValidationError, match=r"The 'n_splits' parameter of make_splits"):
        make_splits(corpus(10, 3), 0)
    with pytest.raises(ValidationError, match="at least 3 distinct speakers"):
        make_split(corpus(2, 5), 0)


def test_check_split_errors():
    with pytest.raises(ValidationError, match=r"split 4: speakers b are in both 'train' and 'test'"):
        check_split(Split(4, 0, ("a", "b"), ("c",), ("b",)))
    with pytest.raises(ValidationError, match=r"split 0: the 'dev' partition is empty"):
        check_split(Split(0, 0, ("a",), (), ("b",)))
    with pytest.raises(ValidationError, match=r"split 0: speakers z are not in the corpus"):
        check_split(Split(0, 0, ("a",), ("b",), ("z",)), ["a", "b", "c"])


@pytest.fixture
def store(tmp_path):
    return generate_synthetic(tmp_path / "s", n_speakers=9, clips_per_speaker=4, visual_dim=8)


def test_load_splits_reuses_and_extends(store):
    first = load_splits(store, 3)
    file = store.path / "splits.json"
    record = json.loads(file.read_text())
    assert record["store_checksum"] == store.checksum and record["base_seed"] == 0
    assert record["fractions"] == [0.7, 0.15, 0.15] and len(record["splits"]) == 3
    assert first == make_splits(store.speakers, 3)
    stamp = file.stat().st_mtime_ns
    assert load_splits(store, 2) == first[:2] and file.stat().st_mtime_ns == stamp  # reused, untouched
    more = load_splits(store, 5)
    assert more[:3] == first and more == make_splits(store.speakers, 5)
    assert len(json.loads(file.read_text())["splits"]) == 5


def test_load_splits_keeps_hand_edited_valid_file(store):
    load_splits(store, 2)
    file = store.path / "splits.json"
    record = json.loads(file.read_text())
    s = record["splits"][0]
    s["train"], s["dev"] = s["train"][1:], s["dev"] + s["train"][:1]
    file.write_text(json.dumps(record))
    assert load_splits(store, 2)[0].dev == tuple(s["dev"])


@pytest.mark.parametrize("edit,match", [
    (lambda r: r["splits"][1]["test"].append(r["splits"][1]["train"][0]), r"split 1: speakers .* both 'train' and 'test'"),
    (lambda r: r["splits"][0]["dev"].append("9999"), r"split 0: speakers 9999 are not in the corpus"),
    (lambda r: r.update(store_checksum="0" * 16), r"made for a store with checksum '0000000000000000'"),
    (lambda r: r.pop("splits"), r"cannot be read as a splits file"),
])
def test_load_splits_refuses_bad_file(store, edit, match):
    load_splits(store, 2)
    file = store.path / "splits.json"
    record = json.loads(file.read_text())
    edit(record)
    file.write_text(json.dumps(record))
    with pytest.raises(ValidationError, match=rf"splits\.json: {match}"):
        load_splits(store, 2)


def test_load_splits_options(store):
    with pytest.raises(ValidationError, match=r"The 'n_splits' parameter of load_splits"):
        load_splits(store, 0)
    load_splits(store, 1, base_seed=5)
    assert load_splits(store, 2)[0] == make_split(store.speakers, 0, base_seed=5)
    with pytest.raises(ValidationError, match=r"The 'base_seed' parameter of load_splits must match the 5"):
        load_splits(store, 2, base_seed=0)
