"""Partitions a user supplies: guards, registration outside the store, and use by avbench run --splits."""

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from avbench.cli import main
from avbench.data.published_splits import import_splits, load_named_splits, partitions_from_table
from avbench.validation import ValidationError


def table_for(store, trials=2):
    """Speaker-independent partitions by speaker rank, shifted per trial."""
    speakers = sorted(set(store.speakers))
    rows = []
    for t in range(trials):
        order = speakers[t:] + speakers[:t]
        part = {s: ("test" if i == 0 else "dev" if i == 1 else "train") for i, s in enumerate(order)}
        rows += [{"clip_id": c, "trial": t + 1, "partition": part[s]}
                 for c, s in zip(store.manifest["clip_id"], store.speakers)]
    return pd.DataFrame(rows)


def test_partitions_become_speaker_splits(tiny_store):
    splits, unknown = partitions_from_table(table_for(tiny_store).astype(str), tiny_store, "t.csv")
    assert len(splits) == 2 and unknown == 0
    speakers = sorted(set(tiny_store.speakers))
    assert splits[0].test == (speakers[0],) and splits[0].dev == (speakers[1],) and len(splits[0].train) == 7
    assert splits[1].test == (speakers[1],) and splits[0].seed != splits[1].seed


def test_guards_name_the_problem(tiny_store):
    t = table_for(tiny_store).astype(str)
    mixed = t.copy()
    first = mixed.index[(mixed["trial"] == "1") & (mixed["partition"] == "train")][0]
    mixed.loc[first, "partition"] = "test"  # one clip of a train speaker in test
    with pytest.raises(ValidationError, match=r"t\.csv, trial '1': split 0: speakers .* are in both 'train' and 'test'"):
        partitions_from_table(mixed, tiny_store, "t.csv")
    with pytest.raises(ValidationError, match=r"t\.csv, line 2: partition 'validation'"):
        partitions_from_table(t.assign(partition=["validation"] + list(t["partition"][1:])), tiny_store, "t.csv")
    with pytest.raises(ValidationError, match=r"trial '2' leaves out 1 clips of the store"):
        partitions_from_table(t.drop(index=t.index[-1]), tiny_store, "t.csv")
    with pytest.raises(ValidationError, match=r"line \d+: clip '.*' appears twice in trial '1'"):
        partitions_from_table(pd.concat([t, t.iloc[:1]], ignore_index=True), tiny_store, "t.csv")
    extra = pd.concat([t, pd.DataFrame([{"clip_id": "not-in-store", "trial": "1", "partition": "test"}])])
    assert partitions_from_table(extra, tiny_store, "t.csv")[1] == 1  # counted, ignored


def test_registered_outside_the_store_and_checked_on_load(tiny_store, tmp_path):
    table_for(tiny_store).to_csv(tmp_path / "p.csv", index=False)
    rec = import_splits(tmp_path / "p.csv", tiny_store, "authors", directory=tmp_path / "cache")
    assert rec["trials"] == 2 and not str(rec["path"]).startswith(str(tiny_store.path))
    splits, sid = load_named_splits(tiny_store, "authors", tmp_path / "cache")
    assert sid == f"authors-{rec['hash'][:8]}" and len(splits) == 2
    record = json.loads(rec["path"].read_text())
    record["splits"][0]["test"] = record["splits"][0]["dev"]
    rec["path"].write_text(json.dumps(record))
    with pytest.raises(ValidationError, match="do not match their recorded hash"):
        load_named_splits(tiny_store, "authors", tmp_path / "cache")
    with pytest.raises(ValidationError, match="none are registered for the store .* registered: authors"):
        load_named_splits(tiny_store, "other", tmp_path / "cache")
    with pytest.raises(ValidationError, match="'name' parameter"):
        import_splits(tmp_path / "p.csv", tiny_store, "../evil", directory=tmp_path / "cache")


def test_run_with_named_splits_keeps_their_units_apart(tiny_store, tmp_path):
    table_for(tiny_store).to_csv(tmp_path / "p.csv", index=False)
    invoke = lambda *a: CliRunner().invoke(main, list(a))  # noqa: E731
    r = invoke("data", "splits", "import", str(tmp_path / "p.csv"), "--store", str(tiny_store.path), "--name", "mine")
    assert r.exit_code == 0 and "2 trials" in r.output, r.output
    common = ["run", "--protocol", "standard", "--model", "auxformer", "--corpus", str(tiny_store.path),
              "--profile", "smoke", "--out", str(tmp_path / "run"), "--quiet"]
    r = invoke(*common, "--splits", "mine", "--seeds", "1")
    assert r.exit_code == 0, r.output
    assert "units trained now: 1, reused: 0" in r.output
    record = json.loads(next((tmp_path / "run" / "units").rglob("train.json")).read_text())
    speakers = sorted(set(tiny_store.speakers))
    assert record["split"]["test"] == [speakers[0]] and "+splits-mine-" in record["unit"]["corpus"]
    # The drawn splits are other partitions: nothing is reused from the named ones.
    r = invoke(*common, "--seeds", "1")
    assert r.exit_code == 0 and "units trained now: 1, reused: 0" in r.output, r.output
    r = invoke(*common, "--splits", "mine", "--seeds", "3")
    assert r.exit_code == 2 and "at most 2" in r.output
    # The report names both corpora after the store (from their manifests), not after the id's "+splits-" tail.
    from avbench.report.rundata import load_run

    run = load_run(tmp_path / "run")
    ids = set(run.raw["corpus"].astype(str))
    assert len(ids) == 2 and {run.corpus(c).name for c in ids} == {tiny_store.name}
