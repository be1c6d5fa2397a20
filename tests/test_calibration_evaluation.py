"""Evaluation keeps each clip's class probabilities and records calibration; evaluations recorded
before it did are rescored from the kept weights, never retrained, and refused if a prediction changes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from avbench.results import EVAL_SCHEMA_VERSION
from avbench.runner import UnitsFailed, run
from avbench.stats.calibration import calibration_metrics

PROTOCOL = """\
name: calib
models: [mult]
regimes: [optimized]
conditions:
  - {kind: full}
  - {kind: clip, modality: audio}
  - {kind: mask, modality: visual, levels: [0.5]}
"""
KEYS = ["full", "clip_audio", "mask_visual@0.5"]


@pytest.fixture
def protocol(tmp_path):
    path = tmp_path / "calib.yaml"
    path.write_text(PROTOCOL)
    return path


def _run(protocol, store, out):
    return run(str(protocol), ["mult"], corpus=store.path, profile="smoke", seeds=1, out=out, progress=False, jobs=1,
               threads=1, echo=lambda s: None)


def _evals(out):
    return {p.stem: p for p in sorted(out.rglob("evals/*.json"))}


def _downgrade(path):
    """What avbench wrote before it kept probabilities: a version 1 record without calibration metrics."""
    record = json.loads(path.read_text())
    record["schema_version"] = 1
    for metric in ("ece", "brier", "nll"):
        record["metrics"].pop(metric)
    path.write_text(json.dumps(record))
    path.with_suffix(".npz").unlink()
    return record


def test_each_evaluation_keeps_its_probabilities_and_calibration(protocol, tiny_store, tmp_path):
    out = tmp_path / "out"
    _run(protocol, tiny_store, out)
    evals = _evals(out)
    assert sorted(evals) == sorted(KEYS)
    for path in evals.values():
        record = json.loads(path.read_text())
        assert record["schema_version"] == EVAL_SCHEMA_VERSION
        with np.load(path.with_suffix(".npz")) as f:
            ids, probs = f["clip_id"], f["probs"]
        pred = record["predictions"]
        assert ids.tolist() == pred["clip_id"]
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
        assert probs.argmax(axis=1).tolist() == pred["pred"]  # the softmax of the logits the prediction took
        expected = calibration_metrics(probs.astype(float) / probs.sum(axis=1, keepdims=True),
                                       np.asarray(pred["label"]))
        for metric, value in expected.items():
            assert record["metrics"][metric] == pytest.approx(value, abs=1e-5)
    table = pd.read_csv(out / "results.csv")
    ece = table[table["metric"] == "ece"]
    assert sorted(ece["condition"].unique()) == ["clip_audio", "full", "mask_visual"]
    assert ece["value"].between(0, 1).all()


def test_older_evaluations_are_rescored_from_the_kept_weights(protocol, tiny_store, tmp_path):
    out = tmp_path / "out"
    _run(protocol, tiny_store, out)
    before = {k: json.loads(p.read_text()) for k, p in _evals(out).items()}
    train = next(out.rglob("train.json"))
    trained = train.read_text()
    for path in _evals(out).values():
        _downgrade(path)
    planned = run(str(protocol), ["mult"], corpus=tiny_store.path, profile="smoke", seeds=1, out=out, progress=False,
                  jobs=1, threads=1, echo=lambda s: None, dry_run=True)
    assert [line.split(": ", 1)[1] for line in planned.to_reuse] == ["3 of 3 condition(s) to score"]
    _run(protocol, tiny_store, out)
    assert train.read_text() == trained  # not retrained
    after = {k: json.loads(p.read_text()) for k, p in _evals(out).items()}
    for key in KEYS:
        assert after[key]["schema_version"] == EVAL_SCHEMA_VERSION
        assert after[key]["predictions"] == before[key]["predictions"]
        assert after[key]["metrics"] == pytest.approx(before[key]["metrics"])
    assert all(p.with_suffix(".npz").exists() for p in _evals(out).values())


def test_rescoring_refuses_weights_that_predict_otherwise(protocol, tiny_store, tmp_path):
    out = tmp_path / "out"
    _run(protocol, tiny_store, out)
    path = _evals(out)["full"]
    record = _downgrade(path)
    record["predictions"]["pred"][0] = (record["predictions"]["pred"][0] + 1) % len(tiny_store.label_names)
    path.write_text(json.dumps(record))
    with pytest.raises(UnitsFailed) as failed:
        _run(protocol, tiny_store, out)
    [error] = failed.value.summary.failed
    assert "gave other predictions than the record holds" in error.message
    assert json.loads(path.read_text())["predictions"] == record["predictions"]  # kept as it was, for the user


def test_report_keeps_confidences_and_draws_the_reliability_diagram(tiny_store, tmp_path):
    from avbench.report import build_report
    from avbench.report.confidences import read

    out = tmp_path / "out"
    run("clipping", ["auxformer"], corpus=tiny_store.path, profile="smoke", seeds=2, out=out, progress=False,
        jobs=1, threads=1, echo=lambda s: None)
    build_report(out, tmp_path / "report")
    index = (tmp_path / "report" / "index.md").read_text()
    assert "Fig. C2: Reliability with full input and one modality" in index and "Table C: Calibration" in index
    saved = read(tmp_path / "report" / "data")
    assert sorted(saved["condition"].unique()) == ["clip_audio", "clip_visual", "full"]
    assert set(saved["model"]) >= {"auxformer"} and saved["seed"].nunique() == 2
    # what the unit directories hold: the top probability of each clip, and whether its prediction was right
    unit = next(out.rglob("auxformer/default/optimized/seed-00"))
    with np.load(unit / "evals" / "full.npz") as f:
        top = dict(zip(f["clip_id"].tolist(), f["probs"].max(axis=1).tolist()))
    predictions = json.loads((unit / "evals" / "full.json").read_text())["predictions"]
    rows = saved[(saved["model"] == "auxformer") & (saved["seed"] == 0) & (saved["condition"] == "full")]
    assert dict(zip(rows["clip_id"], rows["confidence"])) == pytest.approx(top, abs=1e-6)  # kept to 6 decimals
    right = {c: p == y for c, p, y in zip(predictions["clip_id"], predictions["pred"], predictions["label"])}
    assert dict(zip(rows["clip_id"], rows["correct"])) == right
    # rebuilt from its own data/ (no unit directories): the same confidences, the same diagram drawn
    build_report(tmp_path / "report" / "data", tmp_path / "rebuilt")
    pd.testing.assert_frame_equal(read(tmp_path / "rebuilt" / "data"), saved)
    assert "Fig. C2: Reliability" in (tmp_path / "rebuilt" / "index.md").read_text()


def test_a_record_written_after_a_kill_never_sits_beside_older_probabilities(tiny_store, tmp_path, monkeypatch):
    """A record is written after the probabilities it replaces are gone: a kill before the new probabilities
    leaves the condition to score again, never a record beside another record's probabilities."""
    import avbench.unitdir
    from avbench.results import EvalRecord, UnitKey
    from avbench.unitdir import UnitDir

    d = UnitDir(tmp_path, UnitKey("c", "smoke", "mult", "default", {}, "optimized", 0))
    record = EvalRecord("full", None, {}, "ok", {"micro_f1": 0.5}, predictions={"clip_id": ["a"], "pred": [0]})
    d.write_eval("full", record, np.array([[0.6, 0.4]]))
    assert d.scored("full")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the run dies between the record and its probabilities

    monkeypatch.setattr(avbench.unitdir, "write_npz", killed)
    with pytest.raises(KeyboardInterrupt):
        d.write_eval("full", record, np.array([[0.3, 0.7]]))
    assert d.eval_file("full").exists() and not d.scored("full")


def test_a_record_of_this_version_that_lost_its_probabilities_is_scored_again(protocol, tiny_store, tmp_path):
    """Killed after the record, before its probabilities: scored again, the new scoring replacing the record (a
    rerun on another device may break a near tie the other way; that record's metrics were never final)."""
    out = tmp_path / "out"
    _run(protocol, tiny_store, out)
    path = _evals(out)["full"]
    truth = json.loads(path.read_text())
    changed = json.loads(path.read_text())
    changed["predictions"]["pred"][0] = (changed["predictions"]["pred"][0] + 1) % len(tiny_store.label_names)
    path.write_text(json.dumps(changed))
    path.with_suffix(".npz").unlink()
    _run(protocol, tiny_store, out)
    assert json.loads(path.read_text())["predictions"] == truth["predictions"]
    assert path.with_suffix(".npz").exists()


def test_outputs_that_are_not_finite_fail_the_unit_naming_the_condition(protocol, tiny_store, tmp_path, monkeypatch):
    import avbench.worker
    from avbench.training import predict

    def nan_predict(*args, **kwargs):
        scored = predict(*args, **kwargs)
        scored.probs[1] = np.nan
        return scored

    monkeypatch.setattr(avbench.worker, "predict", nan_predict)
    with pytest.raises(UnitsFailed) as failed:
        _run(protocol, tiny_store, tmp_path / "out")
    [error] = failed.value.summary.failed
    assert "under full: the model's outputs are not finite (NaN or inf) for 1 of" in error.message
