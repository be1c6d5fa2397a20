"""Executors: a Dask LocalCluster, a local Ray instance and submitit's local stand-in for SLURM give
the serial run's units bit for bit; a failing unit is reported with its identity while the others
finish, and a rerun retries only it; two processes on one run directory train each unit once;
``avbench status``, ``avbench plan --emit`` and ``avbench run-unit``."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from avbench.cli import main
from avbench.protocol import Protocol
from avbench.runner import UnitsFailed, run

PROTOCOL = Protocol.from_dict({"name": "executors", "models": ["mult"], "regimes": ["optimized"],
                               "conditions": [{"kind": "full"},
                                              {"kind": "mask", "modality": "audio", "levels": [0.5]}]})
FAILING = "mult/default/optimized/seed 1"


def run_on(store, out, executor="local", **options):
    """A run of PROTOCOL; locally in this process unless ``jobs`` says otherwise (it sees the
    test's environment and umask, which reused joblib workers would not)."""
    if executor == "local":
        options.setdefault("jobs", 1)
    threads = torch.get_num_threads()
    try:
        return run(PROTOCOL, corpus=store.path, profile="smoke", seeds=2, out=out, progress=False,
                   echo=lambda s: None, threads=1, executor=executor, executor_options=options)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def serial(tiny_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "run"
    run_on(tiny_store, out)
    return out


def units(out: Path) -> list[Path]:
    return sorted(p.parent for p in out.rglob("record.json"))


def assert_same_units(a_out: Path, b_out: Path) -> None:
    """Same units, bitwise-identical weights and predictions, the same threads recorded."""
    a_units, b_units = units(a_out), units(b_out)
    assert [p.relative_to(a_out) for p in a_units] == [p.relative_to(b_out) for p in b_units]
    assert len(a_units) == 2
    for a, b in zip(a_units, b_units):
        wa, wb = (torch.load(d / "model.pt", weights_only=True) for d in (a, b))
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
        ra, rb = (json.loads((d / "record.json").read_text()) for d in (a, b))
        assert ra["provenance"]["machine"]["cpu_threads"] == rb["provenance"]["machine"]["cpu_threads"] == 1
        assert [e["predictions"] for e in ra["evaluations"]] == [e["predictions"] for e in rb["evaluations"]]


@pytest.mark.parametrize("workers, threads", [
    (2, 1),
    (1, 2),  # dask-worker's default is a thread per core: units still run one at a time per process,
])           # since torch's random state is per process
def test_dask_local_cluster_equals_serial(workers, threads, tiny_store, serial, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster:
        summary = run_on(tiny_store, tmp_path / "run", "dask", scheduler=cluster.scheduler_address)
    assert summary.trained == 2
    assert_same_units(serial, tmp_path / "run")


def test_ray_local_instance_equals_serial(tiny_store, serial, tmp_path):
    pytest.importorskip("ray")
    summary = run_on(tiny_store, tmp_path / "run", "ray")
    assert summary.trained == 2
    assert_same_units(serial, tmp_path / "run")


def test_submitit_local_executor_equals_serial(tiny_store, serial, tmp_path):
    pytest.importorskip("submitit")
    summary = run_on(tiny_store, tmp_path / "run", "slurm", cluster="local", poll=0.2)
    assert summary.trained == 2
    assert_same_units(serial, tmp_path / "run")
    assert list((tmp_path / "run" / "slurm").rglob("*.pkl"))  # it went through submitit's job files
    again = run_on(tiny_store, tmp_path / "run", "slurm", cluster="local", poll=0.2)
    assert again.reused == 2
    assert len(list((tmp_path / "run" / "slurm").iterdir())) == 1  # nothing pending: no second array


def check_failure_then_retry(store, out, serial, executor="local", **options):
    with pytest.raises(UnitsFailed) as info:
        run_on(store, out, executor, **options)
    summary = info.value.summary
    assert [e.label for e in summary.failed] == [FAILING]
    assert FAILING in str(info.value) and "injected failure" in str(info.value)
    error = json.loads((units_dir(out, 1) / "error.json").read_text())
    assert error["error"] == "RuntimeError" and "Traceback" in error["traceback"]
    assert error["host"] and error["versions"]["torch"] == torch.__version__ and error["device"]
    assert (units_dir(out, 0) / "record.json").exists()  # the other unit finished
    table = summary.table
    assert set(table["seed"]) == {0}  # written from what finished
    os.environ.pop("AVBENCH_FAIL_UNIT")
    again = run_on(store, out)  # a rerun, here in this process (the cluster's workers keep the fault)
    assert (again.trained, again.reused, again.failed) == (1, 1, [])
    assert not (units_dir(out, 1) / "error.json").exists()
    assert_same_units(serial, out)


def units_dir(out: Path, seed: int) -> Path:
    return next(p for p in (out / "units").rglob(f"seed-{seed:02d}") if p.is_dir())


def test_failing_unit_is_reported_while_the_others_finish(tiny_store, serial, tmp_path, monkeypatch):
    monkeypatch.setenv("AVBENCH_FAIL_UNIT", FAILING)
    check_failure_then_retry(tiny_store, tmp_path / "run", serial)


def test_failing_unit_on_dask_is_isolated_too(tiny_store, serial, tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setenv("AVBENCH_FAIL_UNIT", FAILING)  # before the workers start: they inherit it
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as cluster:
        check_failure_then_retry(tiny_store, tmp_path / "run", serial, "dask", scheduler=cluster.scheduler_address)


def test_joblib_workers_of_an_earlier_run_are_not_kept_when_the_environment_changed(tiny_store, tmp_path,
                                                                                   monkeypatch):
    """Two runs in one process (a notebook): the second run's units see the environment it was started in, though
    joblib keeps its worker processes between runs."""
    monkeypatch.delenv("AVBENCH_FAIL_UNIT", raising=False)
    assert run_on(tiny_store, tmp_path / "first", jobs=2).failed == []  # the pool is started here
    monkeypatch.setenv("AVBENCH_FAIL_UNIT", FAILING)
    with pytest.raises(UnitsFailed) as info:
        run_on(tiny_store, tmp_path / "second", jobs=2)
    assert [e.label for e in info.value.summary.failed] == [FAILING]


def test_cli_lists_failures_and_status_shows_them(tiny_store, tmp_path, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setenv("AVBENCH_FAIL_UNIT", "auxformer/default/optimized/seed 0")
    args = ["run", "-p", "optimized", "-m", "auxformer", "--corpus", str(tiny_store.path), "--profile", "smoke",
            "--out", str(out), "--quiet", "--threads", "1", "--jobs", "2"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert "1 unit(s) failed" in r.output and "auxformer/default/optimized/seed 0" in r.output
    assert "Run the same command again" in r.output
    s = CliRunner().invoke(main, ["status", str(out)])
    assert s.exit_code == 0, s.output
    assert s.output.splitlines()[0] == "1 failed, 0 running, 0 pending, 1 done (of 2 units)"
    assert "injected failure" in s.output
    states = json.loads(CliRunner().invoke(main, ["status", str(out), "--json"]).output)
    assert sorted(u["state"] for u in states) == ["done", "failed"]
    assert all(u["seconds"] > 0 for u in states if u["state"] == "done")


def test_plan_emit_then_run_unit_then_run_reuses_everything(tiny_store, tmp_path):
    from avbench.results import read_json, write_json

    out, commands = tmp_path / "run", tmp_path / "commands.txt"
    base = ["-p", "optimized", "-m", "auxformer", "--corpus", str(tiny_store.path), "--profile", "smoke",
            "--out", str(out), "--threads", "1"]
    r = CliRunner().invoke(main, ["plan", *base, "--emit", str(commands)])
    assert r.exit_code == 0, r.output
    lines = commands.read_text().splitlines()
    assert len(lines) == 2 and all(line.startswith("avbench run-unit ") for line in lines)
    assert "2 pending" in CliRunner().invoke(main, ["status", str(out)]).output
    for line in lines:
        r = CliRunner().invoke(main, line.split()[1:])
        assert r.exit_code == 0 and "trained" in r.output, r.output
    assert "reused" in CliRunner().invoke(main, lines[0].split()[1:]).output  # exactly one unit, once
    CliRunner().invoke(main, ["plan", *base, "--emit", str(commands)])
    assert commands.read_text() == ""  # nothing pending any more
    r = CliRunner().invoke(main, ["run", *base, "--quiet"])
    assert r.exit_code == 0 and "units trained now: 0, reused: 2" in r.output, r.output
    # units trained by code of other semantics, or before semantics were recorded: a rerun retrains them, so
    # status and plan --emit both count them pending
    other, unrecorded = sorted(out.rglob("train.json"))
    for path, semantics in ((other, "model=0,training=0"), (unrecorded, None)):
        record = read_json(path)
        record["unit"].pop("semantics")
        write_json(path, record | {"unit": record["unit"] | ({"semantics": semantics} if semantics else {})})
    status = CliRunner().invoke(main, ["status", str(out)]).output
    assert "2 pending" in status and "other semantics (model=0,training=0; now model=" in status, status
    assert "other semantics (unrecorded, before semantics versions; now model=" in status, status
    CliRunner().invoke(main, ["plan", *base, "--emit", str(commands)])
    assert len(commands.read_text().splitlines()) == 2


def test_two_processes_on_one_run_directory_train_each_unit_once(tiny_store, serial, tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "avbench.cli", "run", "-p", "optimized", "-m", "mult", "--corpus",
            str(tiny_store.path), "--profile", "smoke", "--seeds", "2", "--out", str(out), "--quiet",
            "--threads", "1"]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    trained = sum(err.count(": trained,") for _, err in outputs)
    assert trained == 2  # each unit trained by one process; the other waited on its lock and reused it
    assert len(units(out)) == 2 and not list(out.rglob("*.tmp*"))
    status = CliRunner().invoke(main, ["status", str(out)]).output
    assert status.startswith("0 failed, 0 running, 0 pending, 2 done")


def test_missing_engine_is_named_with_its_install_command(tiny_store, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # as if not installed
    r = CliRunner().invoke(main, ["run", "-p", "optimized", "-m", "mult", "--corpus", str(tiny_store.path),
                                  "--profile", "smoke", "--out", str(tmp_path), "--executor", "slurm"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "pip install 'avbench[slurm]'" in r.output


def test_an_engine_option_for_another_executor_is_refused(tiny_store, tmp_path):
    r = CliRunner().invoke(main, ["run", "-p", "optimized", "--corpus", str(tiny_store.path), "--out", str(tmp_path),
                                  "--scheduler", "tcp://127.0.0.1:8786"])
    assert r.exit_code == 2 and "'--scheduler' option applies to --executor dask only" in r.output


def test_each_worker_on_a_gpu_host_claims_its_own_gpu(tmp_path, monkeypatch):
    """Without a GPU here, CUDA is faked: two workers of one host get cuda:0 and cuda:1."""
    from avbench import worker as units

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(units, "_GPU_CLAIMS", [])
    try:
        first = units.resolve_worker_device("cuda", tmp_path)
        second = units.resolve_worker_device("cuda", tmp_path)  # another claim: as a second worker's
        assert (first, second) == (torch.device("cuda", 0), torch.device("cuda", 1))
        assert units.resolve_worker_device("cuda:1", tmp_path) == torch.device("cuda", 1)  # explicit: as asked
    finally:
        for fd in units._GPU_CLAIMS:
            os.close(fd)


def test_cuda_on_slurm_without_gpus_is_refused_before_any_work(tiny_store, tmp_path):
    pytest.importorskip("submitit")
    r = CliRunner().invoke(main, ["run", "-p", "optimized", "-m", "mult", "--corpus", str(tiny_store.path),
                                  "--profile", "smoke", "--out", str(tmp_path / "run"), "--executor", "slurm",
                                  "--device", "cuda"])
    assert r.exit_code == 2 and "--gpus 1" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "run" / "units").exists()


def test_local_workers_print_a_line_per_epoch(tiny_store, tmp_path):
    """--jobs 2: each worker reports its unit's epochs as they finish (progress bars would interleave)."""
    r = subprocess.run([sys.executable, "-m", "avbench.cli", "run", "-p", "optimized", "-m", "mult", "--corpus",
                        str(tiny_store.path), "--profile", "smoke", "--out", str(tmp_path / "run"), "--jobs", "2",
                        "--threads", "1"], capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"},
                       timeout=600)
    assert r.returncode == 0, r.stderr
    for seed in (0, 1):
        assert f"mult/default/optimized/seed {seed}: epoch 1/2, dev loss" in r.stderr


def test_progress_in_every_mode(tiny_store, tmp_path):
    """One unit at a time and no terminal: a line when the corpus is checked and one per epoch."""
    r = CliRunner().invoke(main, ["run", "-p", "optimized", "-m", "mult", "--corpus", str(tiny_store.path),
                                  "--profile", "smoke", "--out", str(tmp_path / "run"), "--jobs", "1"])
    assert r.exit_code == 0, r.output
    assert f"Corpus {tiny_store.name} checked: {len(tiny_store)} clips" in r.output
    for seed in (0, 1):
        assert f"mult/default/optimized/seed {seed}: epoch 1/2, dev loss" in r.output


def test_status_shows_a_unit_held_by_a_process_as_running(tiny_store, tmp_path):
    from avbench.results import UnitKey, read_json
    from avbench.status import run_status
    from avbench.unitdir import UnitDir

    out = tmp_path / "run"
    base = ["-p", "optimized", "-m", "mult", "--corpus", str(tiny_store.path), "--profile", "smoke", "--out", str(out)]
    assert CliRunner().invoke(main, ["plan", *base, "--emit", str(tmp_path / "c.txt")]).exit_code == 0
    plan = read_json(next((out / "plans").glob("*.json")))
    entry = next(iter(plan["units"].values()))
    d = UnitDir(out, UnitKey.from_json(entry["unit"]))
    with d.lock():  # as a worker training it would
        states = {s.state for s in run_status(out)}
        running = [s for s in run_status(out) if s.state == "running"]
        assert "no epoch finished yet" in running[0].detail
        d.write_progress(1, 2, 3.0)  # as the worker does after each epoch
        [running_later] = [s for s in run_status(out) if s.state == "running"]
    assert states == {"running", "pending"} and len(running) == 1
    assert f"pid {os.getpid()}" in running[0].detail and running[0].seconds >= 0
    assert "epoch 1/2, about 3 s of training left" in running_later.detail
    assert {s.state for s in run_status(out)} == {"pending"}  # released


def fresh_joblib_workers() -> None:
    """joblib reuses its worker processes across calls: new ones see the environment as set now."""
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


def test_a_killed_local_worker_is_reported_and_the_rest_written(tiny_store, serial, tmp_path, monkeypatch):
    monkeypatch.setenv("AVBENCH_KILL_UNIT", FAILING)
    fresh_joblib_workers()
    out = tmp_path / "run"
    threads = torch.get_num_threads()
    try:
        with pytest.raises(UnitsFailed) as info:
            run(PROTOCOL, corpus=tiny_store.path, profile="smoke", seeds=2, out=out, progress=False,
                echo=lambda s: None, threads=1, jobs=2)
    finally:
        torch.set_num_threads(threads)
    failed = [e.label for e in info.value.summary.failed]
    assert FAILING in failed and "worker process died" in str(info.value)
    assert (out / "results.csv").exists() and (units_dir(out, 1) / "error.json").exists()
    monkeypatch.delenv("AVBENCH_KILL_UNIT")
    fresh_joblib_workers()  # none of the later tests' workers inherits the fault
    again = run_on(tiny_store, out)
    assert again.failed == [] and again.trained == len(failed)
    assert_same_units(serial, out)


def test_slurm_without_sbatch_is_refused(tiny_store, tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    r = CliRunner().invoke(main, ["run", "-p", "optimized", "-m", "mult", "--corpus", str(tiny_store.path),
                                  "--profile", "smoke", "--out", str(tmp_path / "run"), "--executor", "slurm"])
    assert r.exit_code == 2 and "sbatch" in r.output and "Traceback" not in r.output


def test_a_file_system_without_flock_is_refused_before_any_training(tiny_store, tmp_path, monkeypatch):
    import errno

    from avbench import unitdir
    from avbench.validation import DataError

    def no_flock(fd, op):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(unitdir.fcntl, "flock", no_flock)
    with pytest.raises(DataError, match="flock support"):
        run_on(tiny_store, tmp_path / "run")
    assert not list((tmp_path / "run").rglob("train.json"))


def test_lock_files_follow_the_umask(tiny_store, tmp_path):
    old = os.umask(0o002)
    try:
        run_on(tiny_store, tmp_path / "run")
    finally:
        os.umask(old)
    locks = list((tmp_path / "run" / "locks").glob("*.lock"))
    assert locks and all(p.stat().st_mode & 0o777 == 0o664 for p in locks)


def test_status_of_a_run_written_before_plans_were_recorded(serial, tmp_path):
    import shutil

    from avbench.status import run_status

    old = tmp_path / "old"
    shutil.copytree(serial, old)
    shutil.rmtree(old / "plans")  # as avbench wrote run directories before `avbench status` existed
    states = run_status(old)
    assert [s.state for s in states] == ["done", "done"]
    assert sorted(s.label for s in states) == ["mult/default/optimized/seed 0", "mult/default/optimized/seed 1"]


def test_an_engine_option_is_refused_by_another_executor_even_at_its_default(tiny_store, tmp_path):
    base = ["run", "-p", "optimized", "-m", "mult", "--corpus", str(tiny_store.path), "--profile", "smoke",
            "--out", str(tmp_path / "run")]
    for flags in (["--time", "240"], ["--time", "300"], ["--jobs", "1"]):
        r = CliRunner().invoke(main, [*base, *flags, "--executor", "dask", "--scheduler", "tcp://127.0.0.1:1"])
        assert r.exit_code == 2 and f"The '{flags[0]}' option applies to --executor" in r.output, r.output
    r = CliRunner().invoke(main, [*base, "--executor", "dsk"])
    assert r.exit_code == 2 and "Did you mean 'dask'" in r.output
    assert not (tmp_path / "run").exists()


PLUGIN = '''
from avbench.executors import ExecutorOption


class InlineExecutor:
    """Runs each unit in this process, in reverse order (a plugin's own way)."""

    name, extra, runs_here = "inline", None, True
    options = (ExecutorOption("tag", "--tag", str, "none", help="inline: a tag."),)

    def __init__(self, *, device, tag="none"):
        self.tag = tag

    def map(self, tasks):
        from avbench.worker import execute

        for task in reversed(tasks):
            yield execute(task)
'''


def test_an_executor_plugin_is_one_class_and_an_entry_point(tiny_store, serial, tmp_path, monkeypatch):
    from importlib.metadata import EntryPoint

    import avbench.executors

    (tmp_path / "inline_executor.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    point = EntryPoint("inline", "inline_executor:InlineExecutor", avbench.executors.GROUP)
    real = avbench.executors.entry_points
    monkeypatch.setattr(avbench.executors, "entry_points",
                        lambda group, name=None: [p for p in [point] if name in (None, p.name)] or real(group=group))
    assert "inline" in avbench.executors.executor_names()
    assert CliRunner().invoke(main, ["run", "--help"]).exit_code == 0
    assert "inline_executor" not in sys.modules  # listing and --help import no plugin
    summary = run_on(tiny_store, tmp_path / "run", "inline", tag="x")
    assert summary.trained == 2
    assert_same_units(serial, tmp_path / "run")
    with pytest.raises(Exception, match="'jobs' option applies to --executor local only"):
        run_on(tiny_store, tmp_path / "run", "inline", jobs=2)


def test_a_lost_unit_says_whether_it_ran_and_where(tiny_store, tmp_path):
    """Dask (or any engine) reports a unit lost: one still queued is not said to have been running,
    the engine's text is shortened at a word, and error.json names the worker's host and pid."""
    import time

    from avbench.planning import prepare
    from avbench.worker import lost

    planned = prepare(PROTOCOL, corpus=tiny_store.path, profile="smoke", seeds=1, out=tmp_path / "run")
    [task] = planned.tasks()
    submitted = time.time()
    exc = RuntimeError("Attempted to run task on a worker that died " + "verylongword " * 60)
    queued = lost(task, exc, submitted, "the Dask cluster lost it")
    assert queued.error.message.startswith("it never started") and "worker running it" not in queued.error.message
    detail = queued.error.message.split("(RuntimeError: ", 1)[1]
    assert all(w in ("Attempted", "to", "run", "task", "on", "a", "worker", "that", "died", "verylongword", "...")
               for w in detail.split(")")[0].split()), detail  # no word cut in half
    assert queued.error.host == "" and queued.error.pid == 0
    # a worker (another process) takes the unit, then dies
    code = ("import sys; from avbench.unitdir import UnitDir; from avbench.results import UnitKey; import json; "
            f"d = UnitDir({str(task.out)!r}, UnitKey.from_json(json.loads(sys.argv[1])));\n"
            "with d.lock(): print(__import__('os').getpid())")
    child = subprocess.run([sys.executable, "-c", code, json.dumps(task.unit.to_json())], capture_output=True,
                           text=True, check=True, env=os.environ | {"PYTHONPATH": str(Path(__file__).parents[1])})
    pid = int(child.stdout)
    ran = lost(task, exc, submitted, "the Dask cluster lost it")
    assert f"the worker running it (pid {pid} on " in ran.error.message
    assert ran.error.pid == pid != os.getpid()
    written = json.loads((task.unit_dir / "error.json").read_text())
    assert written["pid"] == pid and written["message"] == ran.error.message


def test_workers_of_a_killed_parent_exit(tiny_store, tmp_path):
    """kill -9 of a --jobs 2 run: its workers notice and exit instead of training for nobody; the
    next run resumes what they left."""
    import signal
    import time

    args = ["run", "-p", "optimized", "-m", "mult", "--corpus", str(tiny_store.path), "--profile", "quick",
            "--seeds", "2", "--jobs", "2", "--out", str(tmp_path / "run")]
    proc = subprocess.Popen([sys.executable, "-m", "avbench.cli", *args], stderr=subprocess.PIPE, text=True,
                            env=os.environ | {"OMP_NUM_THREADS": "1"}, start_new_session=True)
    for line in proc.stderr:
        if "epoch 1/" in line:
            break
    children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(p) == proc.pid]
    assert children
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.5)
    assert not [pid for pid in children if _alive(pid)]
    r = subprocess.run([sys.executable, "-m", "avbench.cli", *args, "--quiet"], capture_output=True, text=True,
                       env=os.environ | {"OMP_NUM_THREADS": "1"}, timeout=600)
    assert r.returncode == 0 and "units trained now: 2" in r.stdout, r.stderr


def _ppid(proc_dir: Path) -> int | None:
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_executor_option_values_are_read_as_yaml_and_checked(tiny_store, tmp_path, monkeypatch):
    """--executor-option KEY=VALUE: the value typed as YAML reads it (a number, a list, a string), an item
    without '=' is refused naming the option, and a key the executor does not declare is refused naming it."""
    import avbench.runner

    seen = {}

    def capture(*args, **kwargs):
        seen.update(kwargs["executor_options"])
        raise avbench.runner.DataError("captured")

    monkeypatch.setattr(avbench.runner, "run", capture)
    base = ["run", "-p", "optimized", "-m", "mult", "--corpus", str(tiny_store.path), "--out", str(tmp_path / "o"),
            "--executor", "slurm"]
    r = CliRunner().invoke(main, base + ["--executor-option", "gpus=2", "--executor-option", "partition= gpu ",
                                         "--executor-option", "poll=0.5"])
    assert "captured" in r.output, r.output
    assert (seen["gpus"], seen["partition"], seen["poll"]) == (2, "gpu", 0.5)  # int, str, float
    assert seen["time_min"] == 240  # the executor's own flags come at their defaults
    r = CliRunner().invoke(main, base + ["--executor-option", "gpus"])
    assert r.exit_code == 2 and "The '--executor-option' option must look like KEY=VALUE. Got 'gpus'" in r.output
    monkeypatch.undo()
    r = CliRunner().invoke(main, base[:-2] + ["--executor-option", "partition=gpu", "--dry-run"])
    assert r.exit_code == 2 and "'partition' option applies to --executor slurm only" in r.output, r.output
    r = CliRunner().invoke(main, base + ["--executor-option", "qos=high", "--dry-run"])
    assert r.exit_code == 2 and "'qos' option is not an option of the 'slurm' executor" in r.output, r.output
    assert not (tmp_path / "o").exists()  # refused before any work
