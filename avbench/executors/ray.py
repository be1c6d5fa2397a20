"""The Ray executor: units on a Ray cluster, or a local Ray instance."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Iterator

from avbench.executors import ExecutorOption, need

if TYPE_CHECKING:  # the CLI reads the executors' options without importing pandas
    from avbench.units import UnitOutcome, UnitTask


class RayExecutor:
    """A Ray cluster at ``address`` (``auto``, ``ray://host:10001``); None starts a local instance."""

    name = "ray"
    extra = "ray"
    runs_here = False
    options = (ExecutorOption("address", "--address", str, None, metavar="ADDRESS",
                              help="ray: the cluster's address (auto, ray://host:10001).  [default: a local "
                                   "Ray instance]"),)

    def __init__(self, *, device: str, address: str | None = None):
        need("ray", self.name, self.extra)
        self.address = address

    def map(self, tasks: list[UnitTask]) -> Iterator[UnitOutcome]:
        import ray

        from avbench.worker import execute, lost

        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address, include_dashboard=False, configure_logging=False)  # workers' epoch lines reach the driver
        try:
            # Ray hides the GPUs from a task that does not ask for one, so `auto` asks when the cluster has any
            has_gpus = ray.cluster_resources().get("GPU", 0) > 0
            gpu = any(t.device.startswith("cuda") or (t.device == "auto" and has_gpus) for t in tasks)
            remote = ray.remote(execute)
            submitted = time.time()
            refs = {remote.options(num_cpus=t.threads, num_gpus=1 if gpu else 0, max_retries=0).remote(t): t
                    for t in tasks}
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                try:
                    yield ray.get(done[0])
                except Exception as exc:  # the worker died
                    yield lost(refs[done[0]], exc, submitted, "the Ray cluster lost it")
        finally:
            if started:
                ray.shutdown()
