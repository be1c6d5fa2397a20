"""One unit directory, one answer: the dry run, the resume message, ``avbench status`` and the
worker agree on a directory in each state (fresh, mid-epoch, trained, finished, stale, failed),
because all of them ask :meth:`avbench.unitdir.UnitDir.state`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from avbench.runner import UnitsFailed, run
from avbench.status import run_status

REPO = Path(__file__).resolve().parents[1]
UNIT = "mult/default/optimized/seed 0"


def _run(store, out, protocol="masking", **kw):
    return run(protocol, ["mult"], corpus=store.path, profile="smoke", seeds=1, out=out, progress=False, jobs=1,
               threads=1, **kw)


def make_fresh(store, out):
    pass


def make_mid_epoch(store, out):
    """Killed (kill -9) after the first of two epochs."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "AVBENCH_CRASH_AT": "epoch:1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "avbench.cli", "run", "-p", "masking", "-m", "mult", "--corpus",
                           str(store.path), "--profile", "smoke", "--seeds", "1", "--jobs", "1", "--threads", "1",
                           "--quiet", "--out", str(out)], env=env, capture_output=True, text=True,
                          start_new_session=True, timeout=300)
    assert proc.returncode == -9, proc.stderr


def make_trained(store, out):
    _run(store, out, protocol="optimized", echo=lambda s: None)  # the same unit, scored under `full` only


def make_finished(store, out):
    _run(store, out, echo=lambda s: None)


def make_stale(store, out):
    make_finished(store, out)
    train = next(out.rglob("train.json"))
    record = json.loads(train.read_text())
    record["unit"]["semantics"] = "model=0,training=0"
    train.write_text(json.dumps(record))


def make_scored_without_probabilities(store, out):
    """Finished by an avbench that kept no class probabilities (evaluation records of version 1)."""
    make_finished(store, out)
    for path in out.rglob("evals/*.json"):
        record = json.loads(path.read_text())
        if record["status"] == "ok":
            record["schema_version"] = 1
            path.write_text(json.dumps(record))
            path.with_suffix(".npz").unlink()


def make_failed(store, out, monkeypatch):
    monkeypatch.setenv("AVBENCH_FAIL_UNIT", UNIT)
    with pytest.raises(UnitsFailed):
        _run(store, out, echo=lambda s: None)
    monkeypatch.delenv("AVBENCH_FAIL_UNIT")


# state -> (dry run list and its line's tail, resume message part, status state and detail part,
#           what the run then does with the unit, its line)
EXPECTED = {
    "fresh": ("to_train", "19 of 19 condition(s) to score", None, ("pending", "not started"), "trained"),
    "mid-epoch": ("to_train", "(resumes after epoch 1)", "1 resumed from their last finished epoch",
                  ("pending", "resumes after epoch 1"), "trained"),
    "trained": ("to_reuse", "18 of 19 condition(s) to score", "1 of 1 units already trained",
                ("pending", "trained; 18 of 19 condition(s) to score"), "reused"),
    "finished": ("to_reuse", "0 of 19 condition(s) to score", "1 of 1 units already trained", ("done", ""),
                 "reused"),
    "scored without probabilities": ("to_reuse", "19 of 19 condition(s) to score", "1 of 1 units already trained",
                                     ("pending", "trained; 19 of 19 condition(s) to score"), "reused"),
    "stale": ("to_train", "other semantics (model=0,training=0", None, ("pending", "other semantics"), "trained"),
    "failed": ("to_train", "(failed: RuntimeError: injected failure", None, ("failed", "injected failure"),
               "trained"),
}


@pytest.mark.parametrize("state", list(EXPECTED))
def test_dry_run_resume_message_status_and_worker_agree(state, tiny_store, tmp_path, monkeypatch):
    out = tmp_path / "run"
    maker = {"fresh": make_fresh, "mid-epoch": make_mid_epoch, "trained": make_trained,
             "finished": make_finished, "stale": make_stale,
             "scored without probabilities": make_scored_without_probabilities}.get(state)
    maker(tiny_store, out) if maker else make_failed(tiny_store, out, monkeypatch)
    listed, tail, resumed, (status, detail), then = EXPECTED[state]

    planned = _run(tiny_store, out, dry_run=True, echo=lambda s: None)
    lines = getattr(planned, listed)
    assert len(lines) == 1 and lines[0].startswith(UNIT) and tail in lines[0], (planned.to_train, planned.to_reuse)
    assert planned.to_train + planned.to_reuse == lines

    if out.exists() and (out / "plans").exists():  # status reads the plan a run recorded
        [unit] = [s for s in run_status(out) if s.label == UNIT]
        if state != "trained":  # the plan recorded by the `optimized` run lists its one condition
            assert (unit.state, detail in unit.detail) == (status, True), unit

    echoed = []
    summary = _run(tiny_store, out, echo=echoed.append)
    assert (summary.trained, summary.reused) == ((1, 0) if then == "trained" else (0, 1))
    said = "\n".join(echoed)
    assert (resumed in said) if resumed else ("Resuming" not in said or state == "stale"), said
    assert f"{UNIT}: {then}" in said
    if state == "stale":
        assert "retraining" in said and "other semantics" in said
    [unit] = [s for s in run_status(out) if s.label == UNIT]
    assert unit.state == "done"
