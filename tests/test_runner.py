"""The runner: records, the tidy table, reuse on rerun, resume after a crash, clear errors."""

import json

import numpy as np
import pytest

import avbench.worker as worker_mod
from avbench.registry import RegistryError
from avbench.results import COLUMNS, TIDY_COLUMNS, load_results
from avbench.runner import run
from avbench.validation import ValidationError


def _run(store, out, protocol="masking", **kw):
    return run(protocol, ["auxformer"], corpus=store.path, **({"profile": "smoke"} | kw), seeds=2, out=out,
               progress=False, echo=lambda s: None)


def test_masking_run_writes_records_and_tidy_table(tiny_store, tmp_path):
    s = _run(tiny_store, tmp_path)
    t = s.table
    assert list(t.columns) == TIDY_COLUMNS
    assert (t.train_shift_ms == 0).all() and t.is_default.all()
    scored = t[(t.condition != "train") & (t.metric == "micro_f1")]
    assert set(scored.seed) == {0, 1}
    assert sorted(scored[scored.condition == "mask_audio"].level.unique()) == pytest.approx(
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    assert len(scored) == 2 * 19
    assert scored.value.between(0, 1).all()
    rec = json.loads(next(tmp_path.glob("units/**/seed-00/record.json")).read_text())
    for key in ("unit", "profile", "corpus", "split", "history", "provenance", "evaluations"):
        assert key in rec
    assert rec["corpus"]["checksum"] == tiny_store.checksum and rec["profile"]["name"] == "smoke"
    assert "git_revision" in rec["provenance"] and "torch" in rec["provenance"]
    ev = rec["evaluations"][0]
    assert len(ev["predictions"]["clip_id"]) == len(ev["predictions"]["pred"]) > 0
    assert load_results(tmp_path).shape == t.shape
    assert s.train_seconds > 0 and s.eval_seconds > 0


def test_second_run_trains_nothing_and_gives_the_same_table(tiny_store, tmp_path):
    first = _run(tiny_store, tmp_path, protocol="optimized")
    second = _run(tiny_store, tmp_path, protocol="optimized")
    assert first.trained == 2 and second.trained == 0 and second.reused == 2
    assert first.table.equals(second.table)


def test_crash_mid_evaluation_resumes_without_retraining(tiny_store, tmp_path, monkeypatch):
    reference = _run(tiny_store, tmp_path / "ref")
    calls = {"n": 0}
    real = worker_mod.predict

    def flaky(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("killed")
        return real(*a, **kw)

    monkeypatch.setattr(worker_mod, "predict", flaky)
    with pytest.raises(KeyboardInterrupt):
        _run(tiny_store, tmp_path / "crash", jobs=1)  # in this process, where predict is patched
    done = list((tmp_path / "crash").glob("units/**/evals/*.json"))
    assert len(done) == 4  # what was computed before the crash is on disk
    monkeypatch.setattr(worker_mod, "predict", real)
    resumed = _run(tiny_store, tmp_path / "crash")
    assert resumed.trained == 1 and resumed.reused == 1  # seed 0 reused, seed 1 trained now
    a = reference.table.sort_values(COLUMNS[:-1]).reset_index(drop=True)
    b = resumed.table.sort_values(COLUMNS[:-1]).reset_index(drop=True)
    scored = a.condition != "train"
    np.testing.assert_array_equal(a[scored].value.to_numpy(), b[scored].value.to_numpy())


def test_masks_are_stored_and_match_what_the_model_saw(tiny_store, tmp_path):
    from avbench.conditions import Condition, keep_mask

    _run(tiny_store, tmp_path)
    f = next(tmp_path.glob("masks/*/seed-01/mask_visual@0.3.npz"))
    z = np.load(f)
    i = 0
    cid = str(z["clip_id"][i])
    keep = z["keep"][z["offsets"][i]:z["offsets"][i + 1]]
    c = Condition("mask", "visual", 0.3)
    row = int(np.flatnonzero(tiny_store.manifest["clip_id"].to_numpy() == cid)[0])
    v = np.asarray(tiny_store.visual(row), dtype=np.float32)
    _, v2 = c.apply(np.zeros((1, 1)), v, rng=c.rng(1, cid), rates=(62.5, 30.0))
    np.testing.assert_array_equal(np.any(v2 != 0, axis=1), keep & np.any(v != 0, axis=1))
    assert np.array_equal(keep, keep_mask(len(v), 0.3, c.rng(1, cid)))


def test_bad_names_and_options_fail_clearly(tiny_store, tmp_path):
    with pytest.raises(RegistryError, match="Did you mean 'masking'"):
        run("maskng", ["auxformer"], corpus=tiny_store.path, out=tmp_path)
    with pytest.raises(RegistryError, match="Did you mean 'auxformer'"):
        run("masking", ["auxfomer"], corpus=tiny_store.path, out=tmp_path)
    with pytest.raises(ValidationError, match="'seeds'"):
        run("masking", ["auxformer"], corpus=tiny_store.path, out=tmp_path, seeds=0)
    with pytest.raises(ValidationError, match="no option 'posenc'"):
        run("masking", ["auxformer"], corpus=tiny_store.path, out=tmp_path, profile="smoke", options={"posenc": False})
    with pytest.raises(ValidationError, match="'profile'"):
        run("masking", ["auxformer"], corpus=tiny_store.path, out=tmp_path, profile="fast")
    with pytest.raises(ValidationError, match="corpus"):
        run("masking", ["auxformer"], corpus=tmp_path / "nowhere", out=tmp_path, profile="smoke")


def test_parallel_jobs_train_every_unit_once_and_share_the_records(tiny_store, tmp_path):
    par = _run(tiny_store, tmp_path, protocol="optimized", jobs=2)
    assert par.trained == 2 and par.reused == 0
    assert len(list(tmp_path.glob("units/**/record.json"))) == 2
    seq = _run(tiny_store, tmp_path, protocol="optimized")
    assert seq.trained == 0 and seq.reused == 2 and par.table.equals(seq.table)
    with pytest.raises(ValidationError, match="'jobs'"):
        _run(tiny_store, tmp_path, protocol="optimized", jobs=0)


def test_reusing_a_unit_trained_with_another_config_is_refused(tiny_store, tmp_path):
    _run(tiny_store, tmp_path, protocol="optimized")
    rec = next(tmp_path.glob("units/**/seed-00/train.json"))
    data = json.loads(rec.read_text())
    data["unit"]["config"]["heads"] = 2
    rec.write_text(json.dumps(data))
    with pytest.raises(ValidationError, match="trained with model config"):
        _run(tiny_store, tmp_path, protocol="optimized")


def test_a_unit_with_list_options_is_reused_to_score_new_conditions(tiny_store, tmp_path):
    """A record reads list options back as JSON lists while the profile gives tuples (mult-xl's
    head_hidden): the same config, so a second protocol scores its conditions on the trained unit."""
    run("optimized", ["mult-xl"], corpus=tiny_store.path, profile="smoke", seeds=1, out=tmp_path, progress=False,
        echo=lambda s: None)
    s = run("masking", ["mult-xl"], corpus=tiny_store.path, profile="smoke", seeds=1, out=tmp_path, progress=False,
            echo=lambda s: None)
    assert (s.trained, s.reused) == (0, 1)


def test_dry_run_lists_units_to_train_and_reuse_and_writes_nothing(tiny_store, tmp_path):
    planned = _run(tiny_store, tmp_path, protocol="optimized", dry_run=True)
    assert [line.split(":")[0] for line in planned.to_train] == ["auxformer/default/optimized/seed 0",
                                                                 "auxformer/default/optimized/seed 1"]
    assert planned.to_reuse == [] and list(tmp_path.iterdir()) == []
    _run(tiny_store, tmp_path, protocol="optimized")
    again = _run(tiny_store, tmp_path, protocol="optimized", dry_run=True)
    assert again.to_train == [] and len(again.to_reuse) == 2 and "0 of 1 condition(s)" in again.to_reuse[0]


def test_dry_run_writes_nothing_anywhere(tiny_store, tmp_path, monkeypatch):
    """No splits.json in the store, no verification stamp, no synthetic corpus generated."""
    import shutil

    store = tmp_path / "store"
    shutil.copytree(tiny_store.path, store)
    (store / "splits.json").unlink(missing_ok=True)
    monkeypatch.setenv("AVBENCH_HOME", str(tmp_path / "home"))
    before = sorted(p.name for p in store.iterdir())
    planned = run("optimized", ["mult"], corpus=store, profile="smoke", seeds=2, out=tmp_path / "run",
                  dry_run=True, echo=lambda s: None)
    assert len(planned.to_train) == 2
    planned = run("optimized", ["mult"], corpus="synthetic", profile="smoke", out=tmp_path / "run", dry_run=True,
                  echo=lambda s: None)
    assert len(planned.to_train) == 2 and "corpus will be generated" in planned.notes[0]
    assert sorted(p.name for p in store.iterdir()) == before
    assert not (tmp_path / "run").exists()
    assert [p for p in (tmp_path / "home").rglob("*") if p.is_file()] == []


def test_a_modified_profile_does_not_reuse_the_registered_profiles_units(tiny_store, tmp_path):
    from avbench.profiles import get_profile

    first = _run(tiny_store, tmp_path, protocol="optimized", jobs=1)
    longer = get_profile("smoke").replace(epochs=3)
    other = _run(tiny_store, tmp_path, protocol="optimized", profile=longer, jobs=1)
    assert (other.trained, other.reused) == (2, 0)
    assert f"'smoke-{longer.settings_hash()}'" in other.profile_note
    assert len(next(tmp_path.glob(f"units/*/smoke-{longer.settings_hash()}/**/seed-00/train.json")).parents) > 0
    assert first.profile_note == "" and _run(tiny_store, tmp_path, protocol="optimized").reused == 2
    assert get_profile("smoke").key == "smoke"  # registered profiles keep their keys: existing units stay valid


def test_finished_units_are_read_not_rebuilt(tiny_store, tmp_path, monkeypatch):
    """No model built, no weights loaded, no lock taken, no record rewritten, the caller's torch
    threads untouched, and each evaluation record read once."""
    from collections import Counter

    import torch

    import avbench.results
    import avbench.unitdir

    _run(tiny_store, tmp_path, protocol="masking", jobs=1)
    records = sorted(tmp_path.glob("units/**/record.json"))
    written = [p.stat().st_mtime_ns for p in records]

    def refuse(*a, **kw):
        raise AssertionError("a finished unit was rebuilt")

    monkeypatch.setattr(worker_mod, "create_model", refuse)
    monkeypatch.setattr(worker_mod, "load_checkpoint", refuse)
    monkeypatch.setattr(avbench.unitdir, "file_lock", refuse)
    reads = Counter()
    real = avbench.results.read_json

    def counting(path):
        reads[str(path)] += 1
        return real(path)

    monkeypatch.setattr(avbench.results, "read_json", counting)
    monkeypatch.setattr(avbench.unitdir, "read_json", counting)
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        again = _run(tiny_store, tmp_path, protocol="masking")
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(threads)
    assert (again.trained, again.reused) == (0, 2)
    assert [p.stat().st_mtime_ns for p in records] == written
    evals = {k: n for k, n in reads.items() if "/evals/" in k}
    assert len(evals) == 2 * 19 and set(evals.values()) == {1}


def test_defaults_are_one_thread_per_unit_and_a_unit_per_core(tiny_store, tmp_path, monkeypatch):
    import json
    import os

    import torch

    from avbench.executors.local import LocalExecutor

    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # what a 2-core machine gives a process
    try:
        _run(tiny_store, tmp_path, protocol="optimized", jobs=1)
    finally:
        torch.set_num_threads(threads)
    for record in tmp_path.glob("units/**/train.json"):
        assert json.loads(record.read_text())["provenance"]["machine"]["cpu_threads"] == 1
    cores = len(os.sched_getaffinity(0))
    assert LocalExecutor(device="cpu").workers(100) == cores and LocalExecutor(device="cpu").workers(1) == 1
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert LocalExecutor(device="cuda").workers(100) == 3 and LocalExecutor(device="cpu", jobs=5).workers(4) == 4


def test_the_summary_counts_only_the_training_this_run_did(tiny_store, tmp_path):
    first = _run(tiny_store, tmp_path, protocol="optimized", jobs=1)
    again = _run(tiny_store, tmp_path, protocol="optimized", jobs=1)
    assert first.train_seconds > 0 and first.eval_seconds > 0
    assert (again.train_seconds, again.eval_seconds) == (0.0, 0.0)
