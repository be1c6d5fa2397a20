"""The Dask executor: units on a dask.distributed cluster."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from avbench.executors import ExecutorOption, need
from avbench.validation import ValidationError

if TYPE_CHECKING:  # the CLI reads the executors' options without importing pandas
    from avbench.units import UnitOutcome, UnitTask


class DaskExecutor:
    """A dask.distributed cluster: ``scheduler`` is its address (``tcp://host:8786``), a scheduler
    file (dask-jobqueue and ``dask scheduler --scheduler-file`` write one), or a ``Client``."""

    name = "dask"
    extra = "dask"
    runs_here = False
    options = (ExecutorOption("scheduler", "--scheduler", str, None, metavar="ADDRESS",
                              help="dask: the scheduler's address (tcp://host:8786) or its scheduler file."),)

    def __init__(self, *, device: str, scheduler: Any = None):
        if scheduler is None:
            raise ValidationError("The 'dask' executor needs a scheduler: --scheduler ADDRESS or a scheduler "
                                  "file (README, 'Running on a cluster').")
        need("distributed", self.name, self.extra)
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

        from avbench.worker import execute, lost

        client, owned = self._client()
        try:
            submitted = time.time()
            # pure=False: a unique key per submission (keys are global on a scheduler several runs may share)
            futures = {client.submit(execute, t, pure=False): t for t in tasks}
            for future in as_completed(futures):
                try:
                    yield future.result()
                except Exception as exc:  # the worker died, or the scheduler gave up on the task
                    yield lost(futures[future], exc, submitted, "the Dask cluster lost it")
        finally:
            if owned:
                client.close()
