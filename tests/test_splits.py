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


def test_check_partitions_reports_thin_partitions_and_refuses_an_untrained_class():
    from avbench.data.splits import check_partitions

    speakers = corpus(5, [20, 20, 20, 5, 3])  # train s0-s2 (60 clips), dev s3 (5), test s4 (3)
    labels = np.array([0, 1, 2] * 20 + [0, 1, 0, 1, 0] + [2, 2, 2])
    split = Split(0, 0, ("spk0", "spk1", "spk2"), ("spk3",), ("spk4",))
    found = check_partitions(split, speakers, labels, ["a", "b", "c"], min_speakers=2, min_clips=10)
    assert [(f.partition, f.problem) for f in found] == [
        ("dev", "few_speakers"), ("dev", "few_clips"), ("dev", "missing_class"),
        ("test", "few_speakers"), ("test", "few_clips"), ("test", "missing_class")]
    assert found[2].text == "the 'dev' partition has no clip of class 'c'" and not any(f.refused for f in found)
    assert "has 3 clip(s), fewer than 10" in found[4].text and "no clip of class 'a', 'b'" in found[5].text
    labels[:60] = [0, 1] * 30  # no 'c' in training, which the test clips all are
    found = check_partitions(split, speakers, labels, ["a", "b", "c"], min_speakers=1, min_clips=1)
    assert [(f.partition, f.problem, f.refused) for f in found] == [
        ("train", "untrained_class", True), ("dev", "missing_class", False), ("test", "missing_class", False)]
    assert "no clip of class 'c', which the 'test' partition has" in found[0].text
    # the findings travel with the split (to every unit of the trial) but are not part of it
    with_findings = Split(**{**split.__dict__, "findings": tuple(found)})
    assert Split.from_json(with_findings.to_json()).findings == tuple(found) and with_findings == split
    assert "findings" not in split.to_json()


def test_a_run_warns_of_thin_partitions_per_trial_and_records_them_in_the_unit(tiny_store, tmp_path):
    from click.testing import CliRunner

    from avbench.cli import main

    r = CliRunner().invoke(main, ["run", "--protocol", "standard", "--model", "mult", "--corpus", str(tiny_store.path),
                                  "--profile", "smoke", "--seeds", "1", "--out", str(tmp_path / "run"), "--quiet"])
    assert r.exit_code == 0, r.output
    warnings = [line for line in r.output.splitlines() if line.startswith("warning: trial")]
    assert len(warnings) == 1 and warnings[0].startswith("warning: trial 0 (seed-00): ")  # 9 speakers: 1-2 in test
    record = json.loads(next((tmp_path / "run").glob("units/*/smoke/mult/default/standard/seed-00/train.json"))
                        .read_text())
    assert record["split"]["findings"] and all(f["text"] in warnings[0] for f in record["split"]["findings"])


def test_a_trial_whose_training_lacks_a_test_class_is_refused_before_training(tmp_path):
    from click.testing import CliRunner

    from avbench.cli import main

    store = generate_synthetic(tmp_path / "store", seed=0, n_speakers=3, clips_per_speaker=2, visual_dim=2)
    r = CliRunner().invoke(main, ["run", "--protocol", "standard", "--model", "mult", "--corpus", str(store.path),
                                  "--profile", "smoke", "--seeds", "1", "--out", str(tmp_path / "run"), "--quiet"])
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert f"{store.path}: trial 0 (seed-00): the 'train' partition has no clip of class '" in r.output
    assert "which the 'test' partition has" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "run" / "units").exists()
