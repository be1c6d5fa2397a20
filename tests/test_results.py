"""Typed run records: round trips, the one rule for "default configuration", records written before
schema versions (tests/data/run-schema0, written by avbench before this change: protocols optimized,
posenc and misalignment-trained, auxformer, smoke profile, one trial; weights and masks left out)."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from avbench.models import get_model_meta
from avbench.profiles import get_profile
from avbench.protocol import Protocol
from avbench.results import (EVAL_SCHEMA_VERSION, SCHEMA_VERSION, TIDY_COLUMNS, EvalRecord, ManifestEntry, ProtocolManifest, TrainRecord,
                             UnitKey, collect, load_results, read_json, read_manifests)
from avbench.planning import plan

OLD_RUN = Path(__file__).parent / "data" / "run-schema0"
THIRD = 1 / 3


def test_records_round_trip_through_json_with_their_schema_version():
    unit = UnitKey("c-01234567", "smoke", "auxformer", "default", {"heads": 4, "loss_weights": [0.5, 0.25, 0.25]},
                   "optimized", 3, 120.0, "model=2,training=2", False, label="other-name")
    assert UnitKey.from_json(json.loads(json.dumps(unit.to_json()))) == unit
    assert "label" not in unit.to_json()  # a protocol's name for the unit is not its identity
    train = TrainRecord(unit, {"name": "smoke"}, {"name": "c", "checksum": "01234567ab"}, {"index": 3}, {},
                        [{"epoch": 1}], 1, {"params": 10, "train_seconds": 1.0}, {"torch": "x"})
    ev = EvalRecord("mask_audio", 0.5, unit.key(), "ok", {"micro_f1": 0.5}, 0.1, {"clip_id": ["a"]})
    manifest = ProtocolManifest("masking", {"name": "masking"}, "smoke", 2, {"name": "c"}, {},
                                [ManifestEntry(unit.key(), "units/x/evals/full.json")],
                                [ManifestEntry(unit.key(), "units/x/train.json")])
    for record, version in ((train, SCHEMA_VERSION), (ev, EVAL_SCHEMA_VERSION), (manifest, SCHEMA_VERSION)):
        text = json.loads(json.dumps(record.to_json()))
        assert text["schema_version"] == version
        assert type(record).from_json(text) == record


def test_unit_keys_are_equal_by_identity_whatever_the_config_order_or_label():
    a = UnitKey("c", "quick", "auxformer", "default", {"a": 1, "b": [1, 2]}, "optimized", 0, label="pos_enc=true")
    b = UnitKey("c", "quick", "auxformer", "default", {"b": [1, 2], "a": 1}, "optimized", 0)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != UnitKey("c", "quick", "auxformer", "default", {"a": 1, "b": [1, 2]}, "optimized", 0, 500.0)


def test_default_configuration_is_decided_by_one_exact_rule():
    meta = get_model_meta("auxformer")
    assert meta.is_default({}) and meta.is_default({"pos_enc": True}) and meta.is_default({"loss_weights": [THIRD] * 3})
    assert not meta.is_default({"loss_weights": [0.333] * 3})  # close is not equal: another model
    assert not meta.is_default({"pos_enc": False})
    quick = get_profile("quick").model_config(meta)
    assert meta.is_default({"heads": quick["heads"]}, base=quick)  # the profile's own setting changes nothing


@pytest.mark.parametrize("weights, shared", [([THIRD] * 3, True), ([0.333] * 3, False)])
def test_the_runner_and_the_table_agree_on_what_is_the_default(weights, shared):
    p = Protocol.from_dict({"name": "w", "models": ["auxformer"], "variants": [
        {"name": "default"}, {"name": "l", "config": {"loss_weights": weights}}]})
    units = {u.label or u.variant: u for u, _ in plan(p, None, corpus="c", profile=get_profile("smoke"), seeds=1)}
    assert (units["l"] == units["default"]) is shared
    assert units["l"].key()["is_default"] is shared and units["default"].key()["is_default"] is True


def test_records_written_before_schema_versions_are_read(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    train = TrainRecord.from_json(read_json(next(run.glob("units/**/default/optimized/seed-00/train.json"))))
    assert train.schema_version == 0 and train.unit.semantics and train.unit.config["d_model"] == 32
    assert {m.protocol for m in read_manifests(run)} == {"optimized", "posenc", "misalignment-trained"}
    rebuilt = collect(run)
    assert list(rebuilt.columns) == TIDY_COLUMNS
    old = load_results(run)  # results.csv as written then: no unit columns, filled from the manifests
    for table in (rebuilt, old):
        facts = table.groupby(["protocol", "variant"])[["train_shift_ms", "is_default"]].first()
        assert facts.loc[("misalignment-trained", "default+train_shift=500ms")].tolist() == [500.0, True]
        assert facts.loc[("posenc", "pos_enc=true")].tolist() == [0.0, True]
        assert facts.loc[("posenc", "pos_enc=false")].tolist() == [0.0, False]
        assert facts.loc[("optimized", "default")].tolist() == [0.0, True]
    key = ["protocol", "variant", "condition", "level", "metric"]
    scores = [t[t.metric.isin(["micro_f1", "macro_f1", "accuracy"])].sort_values(key)[key + ["value"]]
              .reset_index(drop=True) for t in (rebuilt, old)]
    pd.testing.assert_frame_equal(*scores, check_dtype=False)  # the same scores from the records or the old table


def test_a_unit_shared_by_protocols_is_reported_under_each_once(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    table = collect(run)
    shared = table[(table.condition == "full") & (table.metric == "micro_f1") & (table.train_shift_ms == 0)
                   & table.is_default]
    assert sorted(zip(shared.protocol, shared.variant)) == [("optimized", "default"), ("posenc", "pos_enc=true")]
    assert shared.value.nunique() == 1  # one evaluation record, reported under both protocols
    assert not table.duplicated(subset=[c for c in TIDY_COLUMNS if c != "value"]).any()


def test_a_report_builds_from_records_written_before_schema_versions(tmp_path):
    from avbench.report import build_report

    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    report = build_report(run, figures=False, strict=True)
    assert (report.out / "tables" / "table3.md").exists()  # pos_enc=true found as the paper's row
    assert "Pos. Encoding" in (report.out / "tables" / "table3.md").read_text()
