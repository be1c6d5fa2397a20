"""One unit as a self-contained task: what any executor (a joblib worker, a Dask or Ray worker, a
SLURM array job, ``avbench run-unit``) needs to train and score it, and what it reports back.

A task carries everything by value (store path, the unit's split, profile, device request,
threads), so the worker needs no registry of runs and no state from the process that planned it.
:func:`execute` isolates failures: an exception is written as ``error.json`` beside the unit and
returned as an outcome, never raised, so that one unit's bug or bad data does not cancel the
others.  A per-unit file lock keeps two executors writing to one run directory from training the
same unit twice or interleaving its files.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from avbench.atomic import remove_stale_temporaries
from avbench.faults import fail_point

if TYPE_CHECKING:  # avbench.results (pandas) is imported where used: the CLI starts without it
    from avbench.results import EvalRecord, TrainRecord, UnitKey

ERROR_FILE = "error.json"      # beside a unit that raised; removed when it succeeds
SPEC_SCHEMA = 1


def trained_semantics(unit_dir: Path) -> str | None:
    """The semantics recorded with the unit in ``unit_dir``: its ``train.json``, or ``identity.json``
    while it trains (None: nothing recorded, or recorded before semantics versions existed)."""
    from avbench.results import read_json

    source = next((f for f in (unit_dir / "train.json", unit_dir / "identity.json") if f.exists()), None)
    return read_json(source)["unit"].get("semantics") if source is not None else None


def is_stale(unit_dir: Path, semantics: str) -> bool:
    """Whether a rerun of code of ``semantics`` discards what ``unit_dir`` holds: something trained
    there (identity, checkpoint or training state) by code of other semantics, or before semantics
    were recorded.  Only the error record of a unit that failed early is not stale."""
    trained = any((unit_dir / f).exists() for f in ("train.json", "identity.json", "model.pt", "train_state.pt"))
    return trained and trained_semantics(unit_dir) != semantics


def unit_finished(unit_dir: Path, condition_keys: list[str], semantics: str) -> bool:
    """Whether a unit is finished: its record and every condition's evaluation exist, trained by code
    of ``semantics``.  The one rule behind reuse, the pending units an executor receives,
    ``plan --emit`` and ``avbench status``."""
    return ((unit_dir / "record.json").exists() and (unit_dir / "train.json").exists()
            and all((unit_dir / "evals" / f"{key}.json").exists() for key in condition_keys)
            and not is_stale(unit_dir, semantics))


@dataclass(frozen=True)
class UnitTask:
    """Everything one unit needs, by value (picklable, and JSON for ``avbench run-unit``).

    Attributes:
        corpus: Absolute path of the feature store.
        split: The unit's trial partition (``Split`` fields as a mapping).
        splits_id: Named-partition id (``--splits``) that is part of the corpus id, or ``""``.
        profile: The profile (``Profile.to_dict()``).
        out: Absolute run directory.
        device: ``auto``, ``cpu`` or ``cuda`` (``cuda:N`` too), resolved on the worker: a login
            node without a GPU can plan units for GPU workers.
        threads: Torch threads of the unit (recorded in its provenance; same seed and threads give
            the same predictions on every executor).
        unit: The unit's key.
        conditions: ``(kind, modality, level)`` of each condition to score.
        epoch_lines: The worker prints a line per finished epoch to its stderr (the terminal for
            local processes, the worker's log on a cluster).
    """

    corpus: str
    split: dict[str, Any]
    splits_id: str
    profile: dict[str, Any]
    out: str
    device: str
    threads: int
    unit: UnitKey
    conditions: tuple[tuple[str, str | None, float | None], ...]
    epoch_lines: bool = False

    @property
    def unit_dir(self) -> Path:
        return Path(self.out) / self.unit.path

    def finished(self) -> bool:
        """Whether running the unit again would only read it back (:func:`unit_finished`)."""
        from avbench.conditions import Condition

        return unit_finished(self.unit_dir, [Condition(*c).key for c in self.conditions], self.unit.semantics)

    @property
    def label(self) -> str:
        u = self.unit
        return u.title

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": SPEC_SCHEMA, "corpus": self.corpus, "split": self.split,
                "splits_id": self.splits_id, "profile": self.profile, "out": self.out, "device": self.device,
                "threads": self.threads, "unit": self.unit.to_json(), "label": self.unit.label,
                "conditions": [list(c) for c in self.conditions], "epoch_lines": self.epoch_lines}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "UnitTask":
        from dataclasses import replace

        from avbench.results import UnitKey

        unit = replace(UnitKey.from_json(d["unit"]), label=d.get("label", ""))
        return cls(d["corpus"], dict(d["split"]), d["splits_id"], dict(d["profile"]), d["out"], d["device"],
                   int(d["threads"]), unit, tuple((c[0], c[1], c[2]) for c in d["conditions"]),
                   bool(d.get("epoch_lines", False)))


@dataclass
class UnitOutcome:
    """What a worker reports: the records of a finished unit, or the error record of a failed one."""

    unit: UnitKey
    record: TrainRecord | None = None
    evals: list[EvalRecord] = field(default_factory=list)
    trained: bool = False
    error: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


def make_task(runner, unit: UnitKey, conditions, device: str, threads: int, epoch_lines: bool = False) -> UnitTask:
    """The task of ``unit`` under ``runner``'s store, splits, profile and run directory."""
    split = runner.splits[unit.seed]
    return UnitTask(str(Path(runner.store.path).resolve()),
                    split.to_json(),
                    runner.splits_id, runner.profile.to_dict(), str(Path(runner.out).resolve()), device, threads,
                    unit, tuple((c.kind, c.modality, c.level) for c in conditions), epoch_lines)


def _digest(unit: UnitKey | str) -> str:
    return hashlib.sha1(str(unit if isinstance(unit, str) else unit.path).encode()).hexdigest()[:20]


def _lock_path(out: Path, unit: UnitKey | str) -> Path:
    """The lock file of a unit, or of the unit directory ``unit`` (relative to ``out``)."""
    return Path(out) / "locks" / f"{_digest(unit)}.lock"


def spec_name(unit: UnitKey) -> str:
    """The file name of a unit's spec: readable, and unique per unit directory."""
    return f"{unit.model}-{unit.regime}-seed{unit.seed:02d}-{_digest(unit)[:10]}.json"


def _open_lock(path: Path) -> int:
    """Opens (creating, with the umask's permissions, so group members share it) a lock file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:
        raise  # a read-only run directory: the CLI's "permission denied" message names it
    except OSError as exc:
        raise _lock_error(path, exc) from None


@contextmanager
def file_lock(path: Path, *, wait: bool = True) -> Iterator[int | None]:
    """Holds an exclusive ``flock`` on ``path`` while the body runs and yields its descriptor, or
    None when ``wait`` is False and another process holds it.  The lock dies with its process (no
    stale locks after a kill)."""
    fd = _open_lock(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield None
            return
        except OSError as exc:
            raise _lock_error(path, exc) from None
        yield fd
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def unit_lock(out: Path, unit: UnitKey, *, wait: bool = True) -> Iterator[bool]:
    """Holds the unit's lock file while its body runs; yields whether it was acquired.

    A second process asking for the same unit waits (``wait``) and then finds it finished, so two
    executors on one run directory never train a unit twice or interleave its files.  The lock
    file lives outside the unit directory, which a stale unit's retraining removes.
    """
    with file_lock(_lock_path(out, unit), wait=wait) as fd:
        if fd is not None:
            os.ftruncate(fd, 0)  # who holds it, for `avbench status` (not atomic: only read while held)
            os.write(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                     "started": time.time()}).encode())
        yield fd is not None


def _lock_error(path: Path, exc: OSError):
    from avbench.validation import DataError

    return DataError(f"{path}: cannot take this lock ({exc.strerror or exc}). The run directory must be "
                     "writable and on a file system with flock support (e.g. Lustre mounted with -o flock; NFS "
                     "without local_lock=flock).")


def holder(out: Path, unit: UnitKey | str) -> dict[str, Any] | None:
    """Who runs the unit (or the unit directory ``unit``, relative to ``out``) now: host, pid and
    start time, or None when no process holds its lock."""
    path = _lock_path(out, unit)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                return json.loads(path.read_text() or "{}")
            except ValueError:
                return {}
        return None
    finally:
        os.close(fd)


def resolve_worker_device(request: str, out: Path):
    """The device a worker trains on: ``cuda`` becomes the first GPU of this host no other unit of
    this run holds (one unit per GPU when a host runs several workers), claimed by a lock file
    kept for the worker's life; else the request as :func:`avbench.training.resolve_device` reads it."""
    import torch

    from avbench.training import resolve_device

    device = resolve_device(request) if ":" not in request else torch.device(request)
    if device.type != "cuda" or device.index is not None or torch.cuda.device_count() < 2:
        return device
    claims = Path(out) / "locks" / "gpus"
    host = socket.gethostname()
    for k in range(torch.cuda.device_count()):
        fd = _open_lock(claims / f"{host}-{k}.lock")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _GPU_CLAIMS.append(fd)  # held until the worker process exits
        return torch.device("cuda", k)
    return torch.device("cuda", os.getpid() % torch.cuda.device_count())  # more workers than GPUs


_GPU_CLAIMS: list[int] = []
_RUNNERS: dict[tuple, Any] = {}  # per worker process: one runner per (store, profile, out, device)


def _stderr_line(line: str) -> None:
    import sys

    print(line, file=sys.stderr, flush=True)


def _runner_for(task: UnitTask):
    """This worker's runner for the task's store, profile, run directory and device (reused by the
    next unit of the same run, which keeps the open store and the trial's normalisation)."""
    from avbench.data import FeatureStore
    from avbench.data.splits import Split
    from avbench.profiles import Profile
    from avbench.runner import Runner

    key = (task.corpus, json.dumps(task.profile, sort_keys=True), task.out, task.device, task.splits_id,
           task.epoch_lines, task.threads)  # threads: the runner's provenance records them
    runner = _RUNNERS.get(key)
    if runner is None:
        _RUNNERS.clear()
        while _GPU_CLAIMS:  # another run's: its GPU is free for this one
            os.close(_GPU_CLAIMS.pop())
        profile = task.profile | {"frame_pool": tuple(task.profile["frame_pool"])}
        device = resolve_worker_device(task.device, Path(task.out))
        runner = Runner(FeatureStore.open(task.corpus), {}, Profile(**profile), Path(task.out), device,
                        progress=False, echo=lambda s: None, splits_id=task.splits_id,
                        epoch_echo=_stderr_line if task.epoch_lines else None)
        _RUNNERS[key] = runner
    runner.splits[task.unit.seed] = Split.from_json(task.split)
    return runner


def execute(task: UnitTask, runner=None) -> UnitOutcome:
    """Trains (or reuses) and scores one unit; an exception becomes an error record, not a raise.

    One unit runs at a time per process (a Dask worker may run several tasks in threads, but
    torch's random state and thread count are per process), under the unit's file lock.

    Args:
        task: The unit.
        runner: A runner of the calling process to use (the serial local executor's, with its
            progress bars); by default the worker's own for the task.

    Returns:
        The unit's records, or its error record (also written as ``error.json`` beside the unit,
        with traceback, host, device and versions; removed when the unit later succeeds).
    """
    with _ONE_UNIT_AT_A_TIME:
        return _execute(task, runner)


_ONE_UNIT_AT_A_TIME = threading.Lock()


def _execute(task: UnitTask, runner) -> UnitOutcome:
    import torch

    from avbench.conditions import Condition

    torch.set_num_threads(task.threads)  # before the runner, whose provenance records it
    try:
        with unit_lock(Path(task.out), task.unit):
            # whoever held the lock before is done or dead: a writer killed mid-write (e.g. a worker
            # of a killed run that outlived the run's own cleanup) left its temporaries here
            remove_stale_temporaries(task.unit_dir)
            fail_point(task.label)
            runner = runner if runner is not None else _runner_for(task)
            record, evals, trained = runner.run_unit(task.unit, tuple(Condition(*c) for c in task.conditions))
            (task.unit_dir / ERROR_FILE).unlink(missing_ok=True)
            return UnitOutcome(task.unit, record, evals, trained)
    except Exception as exc:  # isolated: recorded beside the unit, reported at the end of the run
        trace = "".join(traceback.format_exception(exc))
        error = error_record(task, exc, trace, device=str(getattr(runner, "device", task.device)))
        write_error(task, error)
        return UnitOutcome(task.unit, error=error)


def error_record(task: UnitTask, exc: BaseException, trace: str, device: str | None = None) -> dict[str, Any]:
    """What ``error.json`` holds: the unit, the exception, where it ran and with which versions."""
    import platform
    import sys

    import torch

    import avbench

    return {"schema_version": 1, "unit": task.unit.to_json(), "label": task.label,
            "error": type(exc).__name__, "message": str(exc).strip().splitlines()[0] if str(exc).strip() else "",
            "traceback": trace, "host": socket.gethostname(), "pid": os.getpid(), "time": time.time(),
            "device": device or task.device, "threads": task.threads,
            "versions": {"avbench": avbench.__version__, "python": sys.version.split()[0], "torch": torch.__version__,
                         "platform": platform.platform()}}


def write_error(task: UnitTask, error: dict[str, Any]) -> None:
    """Writes ``error.json`` beside the unit; where that fails too, the outcome still carries it."""
    from avbench.results import write_json

    try:
        task.unit_dir.mkdir(parents=True, exist_ok=True)
        write_json(task.unit_dir / ERROR_FILE, error)
    except OSError as exc:
        error["message"] += f" (and its error record could not be written: {exc})"


def lost(task: UnitTask, exc: BaseException, why: str = "the worker running it was lost") -> UnitOutcome:
    """The outcome of a unit whose worker died or whose job the engine reports failed (no outcome
    came back): recorded from the submitting side."""
    error = error_record(task, exc, "".join(traceback.format_exception(exc)))
    error["message"] = f"{why} ({type(exc).__name__}: {str(exc).strip()[:300]})"
    write_error(task, error)
    return UnitOutcome(task.unit, error=error)


def read_task(path: str | os.PathLike) -> UnitTask:
    """A spec written by ``avbench plan --emit``, refused with the file named when it is not one."""
    from avbench.results import read_json
    from avbench.validation import DataError

    path = Path(path)
    try:
        d = read_json(path)
        if d.get("schema_version") != SPEC_SCHEMA:
            raise KeyError("schema_version")
        return UnitTask.from_json(d)
    except FileNotFoundError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise DataError(f"{path}: not a unit spec written by `avbench plan --emit` ({type(exc).__name__}: {exc}). "
                        "Emit the specs again.") from None
