"""The local executor: units on this machine, in this process or in ``jobs`` joblib processes."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Iterator

from avbench.executors import ExecutorOption
from avbench.validation import ValidationError

if TYPE_CHECKING:  # the CLI reads the executors' options without importing pandas
    from avbench.units import UnitOutcome, UnitTask


def default_jobs(device: str) -> int:
    """Units at once when ``--jobs`` is not given: the visible GPUs on CUDA (one each), else the
    cores this process may use (one torch thread each, benchmarks/README.md)."""
    import torch

    if device.startswith("cuda"):
        return max(1, torch.cuda.device_count()) if device == "cuda" else 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class LocalExecutor:
    """This machine: in this process when one unit runs at a time (with progress bars), else in
    ``jobs`` joblib processes, results yielded as units finish."""

    name = "local"
    extra = None
    runs_here = True
    options = (ExecutorOption("jobs", "--jobs", int, None, minimum=1,
                              help="local: units trained at once, one torch thread each (one GPU each on CUDA).  "
                                   "[default: the cores, or the visible GPUs on CUDA, at most the pending units]"),)

    def __init__(self, *, device: str, jobs: int | None = None):
        import torch

        from avbench.validation import check_int

        self.device = device
        self.jobs = None if jobs is None else check_int(jobs, "jobs", "avbench run", minimum=1)
        if self.jobs is not None and self.jobs > 1 and device.startswith("cuda") \
                and self.jobs > torch.cuda.device_count():
            raise ValidationError(f"The 'jobs' parameter of avbench run must be at most the number of GPUs "
                                  f"({torch.cuda.device_count()}) on CUDA: each worker takes one GPU. Got {jobs} instead.",
                                  param="jobs", owner="avbench run")

    def workers(self, pending: int) -> int:
        """How many units run at once for ``pending`` units."""
        return max(1, min(self.jobs or default_jobs(self.device), pending))

    def map(self, tasks: list[UnitTask]) -> Iterator[UnitOutcome]:
        import torch

        from avbench.worker import execute, execute_in_child, lost

        jobs = self.workers(len(tasks))
        if jobs == 1:
            threads = torch.get_num_threads()
            try:
                yield from (execute(t) for t in tasks)
            finally:
                torch.set_num_threads(threads)  # the calling process keeps its own setting
            return
        from joblib import Parallel, delayed

        done, started = set(), time.time()
        tasks = [replace(t, bars=False) for t in tasks]  # bars of several processes would interleave
        _fresh_workers_if_environment_changed()
        try:
            for outcome in Parallel(n_jobs=jobs, return_as="generator_unordered")(
                    delayed(execute_in_child)(t) for t in tasks):
                done.add(outcome.unit)
                yield outcome
        except Exception as exc:  # a worker died (killed, out of memory): joblib stops the whole pool
            for task in tasks:
                if task.unit not in done:
                    yield lost(task, exc, started, "a worker process died (killed, or out of memory?) "
                                                   "and joblib stopped the pool")


def _fresh_workers_if_environment_changed() -> None:
    """Stops joblib's worker processes when this process's environment changed since they started.

    joblib keeps its loky workers between calls of one process (a notebook running two runs), and a
    worker sees the environment of the moment it was started: a changed ``CUDA_VISIBLE_DEVICES``,
    thread limit or ``AVBENCH_*`` variable would otherwise not reach the second run's units.  The
    pool is private to joblib (``loky.reusable_executor._executor``); where a joblib version lacks it,
    nothing is stopped.
    """
    from joblib.externals.loky import reusable_executor

    env = tuple(sorted(os.environ.items()))
    pool = getattr(reusable_executor, "_executor", None)
    if pool is not None and (not _POOL_ENV or _POOL_ENV[-1] != env):  # started by someone else: environment unknown
        pool.shutdown(wait=True, kill_workers=True)
    _POOL_ENV[:] = [env]


_POOL_ENV: list[tuple] = []  # the environment the current joblib workers were started in
