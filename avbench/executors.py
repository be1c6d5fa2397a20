"""Where units run: this machine (joblib processes), a Dask or Ray cluster, or SLURM via submitit.

Every executor takes the same :class:`~avbench.units.UnitTask` list and yields one
:class:`~avbench.units.UnitOutcome` per task as units finish.  None of them cancels the rest on a
failure: :func:`avbench.units.execute` turns a unit's exception into an error record, and a
worker that dies is reported as a lost unit.  The engines are optional extras; asking for one
that is not installed is refused with the command that installs it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

from avbench.units import UnitOutcome, UnitTask, execute, lost
from avbench.validation import ValidationError

EXECUTORS = ("local", "dask", "ray", "slurm")
EXTRAS = {"dask": ("distributed", "dask"), "ray": ("ray", "ray"), "slurm": ("submitit", "slurm")}


def _need(name: str):
    """Imports an executor's engine, or refuses with the install command."""
    module, extra = EXTRAS[name]
    try:
        return __import__(module)
    except ImportError:
        raise ValidationError(f"The '{name}' executor needs {module}, which is not installed. "
                              f"Install it with: pip install 'avbench[{extra}]'") from None


class LocalExecutor:
    """This machine: in this process (``jobs=1``, with progress bars) or in ``jobs`` joblib
    processes, results yielded as units finish."""

    name = "local"

    def __init__(self, jobs: int = 1, runner=None):
        self.jobs, self.runner = jobs, runner

    def map(self, tasks: list[UnitTask]) -> Iterator[UnitOutcome]:
        if self.jobs == 1:
            yield from (execute(t, self.runner) for t in tasks)
            return
        from joblib import Parallel, delayed

        done = set()
        try:
            for outcome in Parallel(n_jobs=self.jobs, return_as="generator_unordered")(
                    delayed(execute)(t) for t in tasks):
                done.add(outcome.unit)
                yield outcome
        except Exception as exc:  # a worker died (killed, out of memory): joblib stops the whole pool
            for task in tasks:
                if task.unit not in done:
                    yield lost(task, exc, "a worker process died (killed, or out of memory?) and joblib "
                                          "stopped the pool before this unit finished")


class DaskExecutor:
    """A dask.distributed cluster: ``scheduler`` is its address (``tcp://host:8786``), a scheduler
    file (dask-jobqueue and ``dask scheduler --scheduler-file`` write one), or a ``Client``."""

    name = "dask"

    def __init__(self, scheduler: Any):
        if scheduler is None:
            raise ValidationError("The 'dask' executor needs a scheduler: --scheduler ADDRESS or a scheduler "
                                  "file (README, 'Running on a cluster').")
        _need("dask")
        self.scheduler = scheduler

    def _client(self):
        from distributed import Client

        if not isinstance(self.scheduler, (str, Path)):
            return self.scheduler, False
        if Path(self.scheduler).is_file():
            return Client(scheduler_file=str(self.scheduler)), True
        return Client(str(self.scheduler)), True

    def map(self, tasks: list[UnitTask]) -> Iterator[UnitOutcome]:
        from distributed import as_completed

        client, owned = self._client()
        try:
            # pure=False: a unique key per submission (keys are global on a scheduler several runs may share)
            futures = {client.submit(execute, t, pure=False): t for t in tasks}
            for future in as_completed(futures):
                try:
                    yield future.result()
                except Exception as exc:  # the worker died (or the scheduler gave up on the task)
                    yield lost(futures[future], exc)
        finally:
            if owned:
                client.close()


class RayExecutor:
    """A Ray cluster at ``address`` (``auto``, ``ray://host:10001``); None starts a local instance."""

    name = "ray"

    def __init__(self, address: str | None = None):
        _need("ray")
        self.address = address

    def map(self, tasks: list[UnitTask]) -> Iterator[UnitOutcome]:
        import ray

        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address, include_dashboard=False, configure_logging=False)  # workers' epoch lines reach the driver
        try:
            # Ray hides the GPUs from a task that does not ask for one, so `auto` asks when the cluster has any
            has_gpus = ray.cluster_resources().get("GPU", 0) > 0
            gpu = any(t.device.startswith("cuda") or (t.device == "auto" and has_gpus) for t in tasks)
            remote = ray.remote(execute)
            refs = {remote.options(num_cpus=t.threads, num_gpus=1 if gpu else 0, max_retries=0).remote(t): t
                    for t in tasks}
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                try:
                    yield ray.get(done[0])
                except Exception as exc:  # the worker died
                    yield lost(refs[done[0]], exc)
        finally:
            if started:
                ray.shutdown()


class SlurmExecutor:
    """SLURM through submitit: one job array for the pending units.

    Args:
        folder: Where submitit keeps job scripts and logs (default ``RUN_DIR/slurm``).
        partition, gpus, time_min, array_parallelism, cpus: The array's ``--partition``, GPUs per
            task, time limit in minutes, most tasks running at once, and CPUs per task (default:
            the units' torch threads).
        cluster: submitit's cluster: ``slurm`` (the default; refused where ``sbatch`` is not found,
            rather than running every unit at once on this machine) or ``local`` (local processes,
            the stand-in the tests use).
        mem_gb: Memory per unit in GB (default: the partition's); paper-size units need 8-16.
        poll: Seconds between checks of the array's state.
    """

    name = "slurm"

    def __init__(self, folder: str | Path | None = None, *, partition: str | None = None, gpus: int = 0,
                 time_min: int = 240, array_parallelism: int = 64, cpus: int | None = None,
                 cluster: str | None = None, poll: float = 5.0, mem_gb: int | None = None):
        import shutil

        _need("slurm")
        cluster = cluster or "slurm"
        if cluster == "slurm" and shutil.which("sbatch") is None:
            raise ValidationError("The 'slurm' executor submits with sbatch, which is not on this machine's PATH. "
                                  "Run it on a SLURM login node, or use --executor local.")
        self.folder, self.partition, self.gpus, self.time_min = folder, partition, gpus, time_min
        self.array_parallelism, self.cpus, self.cluster, self.poll = array_parallelism, cpus, cluster, poll
        self.mem_gb = mem_gb

    def _executor(self, out: Path, threads: int):
        import submitit

        folder = Path(self.folder) if self.folder else out / "slurm" / time.strftime("%Y%m%d-%H%M%S")
        ex = submitit.AutoExecutor(folder=str(folder) + "/%j", cluster=self.cluster)
        params: dict[str, Any] = {"timeout_min": self.time_min, "cpus_per_task": self.cpus or threads,
                                  "slurm_array_parallelism": self.array_parallelism, "name": "avbench"}
        if self.gpus:
            params["gpus_per_node"] = self.gpus
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.mem_gb:
            params["mem_gb"] = self.mem_gb
        ex.update_parameters(**params)
        return ex

    def map(self, tasks: list[UnitTask]) -> Iterator[UnitOutcome]:
        if not tasks:
            return
        ex = self._executor(Path(tasks[0].out), max(t.threads for t in tasks))
        jobs = dict(zip(ex.map_array(execute, tasks), tasks))
        while jobs:
            finished = [j for j in jobs if j.done()]
            for job in finished:
                task = jobs.pop(job)
                try:
                    yield job.result()
                except Exception as exc:  # the job failed outside execute (killed, timed out, node lost)
                    yield lost(task, exc)
            if jobs and not finished:
                time.sleep(self.poll)


def make_executor(name: str, *, jobs: int = 1, runner=None, scheduler: Any = None, address: str | None = None,
                  slurm: dict[str, Any] | None = None, device: str = "auto"):
    """The executor called ``name`` with its options (the CLI's ``--executor`` and friends)."""
    from avbench.validation import check_choice

    check_choice(name, "executor", "avbench run", EXECUTORS)
    if name != "local" and jobs != 1:
        raise ValidationError(f"The 'jobs' parameter of avbench run applies to the local executor only; the "
                              f"'{name}' executor runs as many units at once as its cluster has workers. "
                              f"Got {jobs} instead.")
    if name == "local":
        return LocalExecutor(jobs, runner)
    if name == "slurm" and device == "cuda" and not (slurm or {}).get("gpus"):
        raise ValidationError("The 'device' parameter of avbench run is 'cuda' but the SLURM jobs ask for no GPU. "
                              "Add --gpus 1 (GPUs per unit).")
    if name == "dask":
        return DaskExecutor(scheduler)
    if name == "ray":
        return RayExecutor(address)
    return SlurmExecutor(**(slurm or {}))
