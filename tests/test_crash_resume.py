"""kill -9 anywhere, then the same command again: the results of an uninterrupted run, nothing
duplicated, nothing left behind.

Each run is a real ``avbench`` process in its own session; ``AVBENCH_CRASH_AT`` (see
:mod:`avbench.faults`) makes it SIGKILL its whole process group at an exact point, so every
test stops the run at the same place on any machine.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
TIMING = {"seconds_per_epoch", "train_seconds"}  # wall-clock rows differ between any two runs
PROTOCOL = """\
name: crash
models: [mult]
regimes: [optimized]
conditions:
  - {kind: full}
  - {kind: clip, modality: audio}
  - {kind: mask, modality: visual, levels: [0.3, 0.7]}
"""


def avbench(*args, crash_at=None, check=True):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop("AVBENCH_CRASH_AT", None)
    if crash_at:
        env["AVBENCH_CRASH_AT"] = crash_at
    proc = subprocess.run([sys.executable, "-m", "avbench.cli", *map(str, args)], env=env, capture_output=True,
                          text=True, start_new_session=True, timeout=300)
    if crash_at and not crash_at.endswith("SIGINT"):
        assert proc.returncode == -9, f"expected the crash point {crash_at} to be reached:\n{proc.stderr}"
    elif check and not crash_at:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def protocol(tmp_path_factory):
    path = tmp_path_factory.mktemp("proto") / "crash.yaml"
    path.write_text(PROTOCOL)
    return path


def run_args(protocol, store, out, jobs=1):
    return ["run", "--protocol", protocol, "--corpus", store.path, "--profile", "smoke", "--seeds", "2",
            "--jobs", jobs, "--threads", "1", "--quiet", "--out", out]


def outcome(out: Path) -> dict:
    """What a run leaves: its files, the results without timing rows, every evaluation record
    without its timing."""
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    table = pd.read_csv(out / "results.csv")
    assert not table.duplicated(subset=[c for c in table.columns if c != "value"]).any()
    table = table[~table["metric"].isin(TIMING)].sort_values(list(table.columns[:-1])).reset_index(drop=True)
    evals = {}
    for p in sorted(out.rglob("evals/*.json")):
        record = json.loads(p.read_text())
        record.pop("seconds", None)
        evals[str(p.relative_to(out))] = record
    return {"files": files, "table": table.to_csv(index=False), "evals": evals}


@pytest.fixture(scope="module")
def reference(protocol, tiny_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "out"
    avbench(*run_args(protocol, tiny_store, out))
    return outcome(out)


def leftovers(out: Path) -> list[str]:
    return [str(p) for p in out.rglob("*") if ".tmp" in p.name or p.name == "train_state.pt"]


@pytest.mark.parametrize("crash_at", [
    "epoch:1",          # during training: one epoch's state saved
    "evaluation:2",     # during evaluation: two conditions of the first unit scored
    "evaluation-record:3",  # the third condition's record written, its probabilities not yet (it is rescored)
    "atomic-write:5",   # while writing records (the 1st is the run's plan): model.pt in place, train.json not yet
    "atomic-write:10",  # while writing records: an evaluation record half-way
])
def test_kill_then_resume_equals_uninterrupted(crash_at, protocol, tiny_store, reference, tmp_path):
    out = tmp_path / "out"
    avbench(*run_args(protocol, tiny_store, out), crash_at=crash_at)
    resumed = avbench(*run_args(protocol, tiny_store, out))
    assert "Resuming" in resumed.stderr
    assert leftovers(out) == []
    assert outcome(out) == reference


def test_kill_with_two_jobs_then_resume(protocol, tiny_store, reference, tmp_path):
    out = tmp_path / "out"
    avbench(*run_args(protocol, tiny_store, out, jobs=2), crash_at="epoch:2")
    avbench(*run_args(protocol, tiny_store, out, jobs=2))
    assert leftovers(out) == []
    assert outcome(out) == reference


def test_ctrl_c_exits_130_and_the_same_command_resumes(protocol, tiny_store, reference, tmp_path):
    out = tmp_path / "out"
    stopped = avbench(*run_args(protocol, tiny_store, out), crash_at="epoch:1:SIGINT")
    assert stopped.returncode == 130, stopped.stderr
    assert "Interrupted" in stopped.stderr and "same command" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    resumed = avbench(*run_args(protocol, tiny_store, out))
    assert "Resuming" in resumed.stderr
    assert leftovers(out) == []
    assert outcome(out) == reference


@pytest.mark.parametrize("after, inherited", [
    (0.3, signal.SIG_DFL),  # while the command line is still being imported
    (1.5, signal.SIG_IGN),  # started as a script's background job, which ignores SIGINT: planning, corpus check
])
def test_ctrl_c_works_from_the_first_second(after, inherited, tiny_store, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "avbench", *map(str, run_args("optimized", tiny_store, tmp_path))],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, inherited))
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "Interrupted" in err and "Traceback" not in err


def test_kill_during_data_synth_leaves_no_temporary(tmp_path):
    from avbench.data.synthetic import generate_synthetic

    args = ["data", "synth", "--out", tmp_path / "store", "--speakers", "9", "--clips-per-speaker", "2",
            "--visual-dim", "4"]
    avbench(*args, crash_at="synth-clip:5")
    assert not (tmp_path / "store").exists() and any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    avbench(*args)
    assert [p.name for p in tmp_path.iterdir()] == ["store"]
    expected = generate_synthetic(tmp_path / "expected" / "store", seed=0, n_speakers=9, clips_per_speaker=2,
                                  visual_dim=4)
    assert json.loads((tmp_path / "store" / "store.json").read_text())["checksums"] == expected.meta["checksums"]


def test_rerun_with_fewer_models_seeds_or_another_variant_keeps_every_row(tiny_store, tmp_path):
    """Results accumulate: a narrower rerun into the same --out drops nothing."""
    base = ["run", "--protocol", "clipping", "--corpus", tiny_store.path, "--profile", "smoke", "--threads", "1",
            "--quiet", "--out", tmp_path]
    avbench(*base, "--model", "mult", "--model", "unimodal-audio", "--seeds", "2")
    first = pd.read_csv(tmp_path / "results.csv")
    avbench(*base, "--model", "mult", "--seeds", "1")
    avbench(*base, "--model", "mult", "--seeds", "1", "--set", "heads=2")
    last = pd.read_csv(tmp_path / "results.csv")
    keys = ["model", "variant", "condition", "level", "seed", "metric"]
    assert set(map(tuple, first[keys].astype(str).values)) <= set(map(tuple, last[keys].astype(str).values))
    assert set(last["variant"]) == {"default", "heads=2"}
    report = avbench("report", tmp_path, "--no-html")
    assert "report:" in report.stdout
    data = pd.read_csv(tmp_path / "report" / "data" / "results.csv")
    assert set(data["model"]) == {"mult", "unimodal-audio", "unimodal-visual"}
