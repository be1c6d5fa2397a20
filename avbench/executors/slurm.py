"""The SLURM executor: one job array of the pending units, through submitit."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from avbench.executors import ExecutorOption, need
from avbench.validation import ValidationError

if TYPE_CHECKING:  # the CLI reads the executors' options without importing pandas
    from avbench.units import UnitOutcome, UnitTask


class SlurmExecutor:
    """SLURM through submitit: one job array for the pending units.

    Args:
        partition, gpus, time_min, array_parallelism, mem_gb: The array's ``--partition``, GPUs
            per task, time limit in minutes, most tasks running at once, and memory per unit (GB).
        cpus: CPUs per task (default: the units' torch threads).
        folder: Where submitit keeps job scripts and logs (default ``RUN_DIR/slurm``).
        cluster: submitit's cluster: ``slurm`` (refused where ``sbatch`` is not found, rather than
            running every unit at once on this machine) or ``local`` (the tests' stand-in).
        poll: Seconds between checks of the array's state.
    """

    name = "slurm"
    extra = "slurm"
    runs_here = False
    options = (
        ExecutorOption("partition", "--partition", str, None, help="slurm: the partition to submit to."),
        ExecutorOption("gpus", "--gpus", int, 0, minimum=0, help="slurm: GPUs per unit."),
        ExecutorOption("time_min", "--time", int, 240, minimum=1, help="slurm: time limit of each unit, in minutes."),
        ExecutorOption("array_parallelism", "--array-parallelism", int, 64, minimum=1,
                       help="slurm: most units of the job array running at once."),
        ExecutorOption("mem_gb", "--mem-gb", int, None, minimum=1,
                       help="slurm: memory per unit in GB.  [default: the partition's; paper-size units need 8-16]"),
        ExecutorOption("cluster", "--slurm-cluster", str, None, hidden=True,
                       help="submitit's cluster (local: the tests' stand-in for SLURM)."),
        ExecutorOption("cpus", "--cpus", int, None, minimum=1, hidden=True, help="slurm: CPUs per unit."),
        ExecutorOption("folder", "--slurm-folder", str, None, hidden=True, help="slurm: submitit's folder."),
        ExecutorOption("poll", "--slurm-poll", float, 5.0, minimum=0, hidden=True,
                       help="slurm: seconds between checks of the array."),
    )

    def __init__(self, *, device: str, partition: str | None = None, gpus: int = 0, time_min: int = 240,
                 array_parallelism: int = 64, mem_gb: int | None = None, cluster: str | None = None,
                 cpus: int | None = None, folder: str | Path | None = None, poll: float = 5.0):
        need("submitit", self.name, self.extra)
        if device == "cuda" and not gpus:
            raise ValidationError("The 'device' parameter of avbench run is 'cuda' but the SLURM jobs ask for no GPU. "
                                  "Add --gpus 1 (GPUs per unit).")
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
        from avbench.worker import execute, lost

        if not tasks:
            return
        ex = self._executor(Path(tasks[0].out), max(t.threads for t in tasks))
        submitted = time.time()
        jobs = dict(zip(ex.map_array(execute, tasks), tasks))
        while jobs:
            finished = [j for j in jobs if j.done()]
            for job in finished:
                task = jobs.pop(job)
                try:
                    yield job.result()
                except Exception as exc:  # the job failed outside execute (killed, timed out, node lost)
                    yield lost(task, exc, submitted, "its SLURM job failed")
            if jobs and not finished:
                time.sleep(self.poll)
