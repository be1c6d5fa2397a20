"""One unit's directory: its files, the one answer to every question about them, and its lock.

Whether a unit is finished, can be resumed, was trained by code of other semantics, or failed
is decided here and nowhere else: the dry run, the resume message, the worker, ``avbench status``
and the runner's reuse of finished units all call :meth:`UnitDir.state`.  Layout (under
``OUT/units/...``, see :mod:`avbench.results`)::

    identity.json     the unit's key while it trains (semantics checked on resume), removed when done
    progress.json     the last finished epoch and its timing while it trains (status, ETA), removed when done
    train_state.pt    per-epoch training state (resume point), removed when done
    normalization.npz the trial's z-normalisation statistics
    model.pt          the dev-selected weights
    train.json        :class:`~avbench.results.TrainRecord`
    evals/<key>.json  :class:`~avbench.results.EvalRecord`, one per condition
    evals/<key>.npz   its per-clip class probabilities (``ok`` evaluations), written after the record:
                      an evaluation is scored once both are there (:meth:`UnitDir.scored`)
    record.json       train.json + every evaluation (one file per unit for other tools)
    error.json        :class:`ErrorRecord` of the last failed attempt, removed when the unit succeeds

The lock file of a unit lives outside its directory (``OUT/locks/``), which retraining a stale
unit removes; ``flock`` locks die with their process, so a killed run leaves no stale lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import socket
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from avbench.faults import crash_point
from avbench.results import EvalRecord, TrainRecord, UnitKey, canonical_config, read_json, write_json, write_npz
from avbench.validation import DataError, ValidationError

#: The states of :meth:`UnitDir.state`, in the order a unit passes through them (``stale`` and
#: ``failed`` aside).
STATES = ("fresh", "resumable", "trained", "finished", "stale", "failed")


@dataclass(frozen=True)
class ErrorRecord:
    """``error.json``: why a unit's last attempt failed, where it ran and with which versions."""

    unit: dict[str, Any]
    label: str
    error: str          # the exception's type name
    message: str        # its first line
    traceback: str
    host: str           # where the unit ran (the worker's host, not the submitting one)
    pid: int
    time: float
    device: str
    threads: int
    versions: dict[str, str] = field(default_factory=dict)
    schema_version: int = 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ErrorRecord":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def summary(self) -> str:
        return f"{self.error}: {self.message}"


@dataclass(frozen=True)
class DirState:
    """Where a unit directory stands.

    Attributes:
        name: One of :data:`STATES`: ``fresh`` (nothing trained), ``resumable`` (training stopped
            after ``epoch`` finished epochs), ``trained`` (weights and record written, ``todo``
            conditions left to score), ``finished`` (nothing left: a rerun only reads it),
            ``stale`` (trained by code of other semantics: a rerun discards it, ``reason`` says
            why) or ``failed`` (its last attempt left ``error``; a rerun retries from what is there).
        todo: The condition keys still to score.
        epoch: Finished epochs of a resumable unit (None when unknown: a run before progress was recorded).
        reason: Why a unit is stale.
        error: The error record of a failed unit.
        trained: Its weights and training record exist (finished, trained, or failed while scoring).
    """

    name: str
    todo: tuple[str, ...] = ()
    epoch: int | None = None
    reason: str = ""
    error: ErrorRecord | None = None
    trained: bool = False

    @property
    def finished(self) -> bool:
        return self.name == "finished"

    def describe(self, n_conditions: int) -> str:
        """One phrase for the dry run and ``avbench status``."""
        if self.name == "stale":
            return f"{self.reason}: a rerun retrains it"
        if self.name == "failed":
            return f"failed: {self.error.summary}" if self.error else "failed"
        if self.name == "resumable":
            return ("resumes from its last finished epoch" if self.epoch is None
                    else f"resumes after epoch {self.epoch}")
        if self.name == "trained":
            return f"trained; {len(self.todo)} of {n_conditions} condition(s) to score"
        return "not started" if self.name == "fresh" else "finished"


class UnitDir:
    """The directory of ``unit`` under the run directory ``out`` (or at ``path``, for a unit
    known only by its directory: a run written before plans were recorded, or a report reading
    a unit's evaluations, which passes no key and only reads records)."""

    def __init__(self, out: str | os.PathLike, unit: UnitKey | None, path: Path | None = None):
        self.out, self.unit = Path(out), unit
        self.path = self.out / unit.path if path is None else Path(path)

    # ---------------------------------------------------------------- files
    @property
    def train_file(self) -> Path:
        return self.path / "train.json"

    @property
    def model_file(self) -> Path:
        return self.path / "model.pt"

    @property
    def state_file(self) -> Path:
        """The per-epoch training state :func:`avbench.training.fit` resumes from."""
        return self.path / "train_state.pt"

    @property
    def normalization_file(self) -> Path:
        return self.path / "normalization.npz"

    @property
    def error_file(self) -> Path:
        return self.path / "error.json"

    def eval_file(self, key: str) -> Path:
        return self.path / "evals" / f"{key}.json"

    def probability_file(self, key: str) -> Path:
        return self.path / "evals" / f"{key}.npz"

    def scored(self, key: str) -> bool:
        """Whether condition ``key`` is scored as this avbench scores: its record and, for an ``ok``
        one, its probabilities are written.

        Probabilities left from an earlier record are removed before a record is written, and the
        probabilities are written last, so the two files together say that both belong to the record;
        only a record without probabilities is read (not applicable, an older record to rescore, or a
        write the run was killed in).  A corrupt record beside its probabilities is refused when read
        (its message says to delete it).
        """
        if not self.eval_file(key).exists():
            return False  # probabilities alone (a record deleted by hand) are scored again
        if self.probability_file(key).exists():
            return True
        try:
            return self.read_eval(key).status != "ok"
        except (DataError, TypeError):
            return False  # a corrupt record is scored again

    # ---------------------------------------------------------------- the one answer
    def recorded_semantics(self) -> str | None:
        """The semantics recorded with the unit: its ``train.json``, or ``identity.json`` while it
        trains (None: nothing recorded, or recorded before semantics versions existed)."""
        source = next((f for f in (self.train_file, self.path / "identity.json") if f.exists()), None)
        return read_json(source)["unit"].get("semantics") if source is not None else None

    def state(self, condition_keys: list[str] | tuple[str, ...], semantics: str | None = None) -> DirState:
        """Where the unit stands for a run that scores ``condition_keys`` with code of ``semantics``
        (default: the unit key's own).  Reads a few small files; never builds a model."""
        semantics = self.unit.semantics if semantics is None else semantics
        todo = tuple(k for k in condition_keys if not self.scored(k))
        trained_any = any((self.path / f).exists() for f in ("train.json", "identity.json", "model.pt",
                                                             "train_state.pt"))
        if trained_any:
            found = self.recorded_semantics()
            if found != semantics:
                return DirState("stale", todo, reason=(
                    f"it was trained by avbench code of other semantics "
                    f"({found or 'unrecorded, before semantics versions'}; now {semantics}), so its results "
                    f"would not be those of this model"))
        trained = self.train_file.exists() and self.model_file.exists()
        if trained and not todo and (self.path / "record.json").exists():
            return DirState("finished", trained=True)
        if self.error_file.exists():
            try:
                error = ErrorRecord.from_json(read_json(self.error_file))
            except (DataError, TypeError):
                error = None
            return DirState("failed", todo, self._epoch(), error=error, trained=trained)
        if trained:
            return DirState("trained", todo, trained=True)
        if self.state_file.exists():
            return DirState("resumable", todo, self._epoch())
        return DirState("fresh", todo)

    def _epoch(self) -> int | None:
        progress = self.read_progress()
        return None if progress is None else int(progress["epoch"])

    # ---------------------------------------------------------------- records
    def read_train(self) -> TrainRecord:
        """The unit's training record, refused when it was trained with another model config."""
        record = TrainRecord.from_json(read_json(self.train_file))
        if canonical_config(record.unit.config) != canonical_config(self.unit.config):
            raise ValidationError(f"{self.path}: this unit was trained with model config {dict(record.unit.config)}, "
                                  f"but this run asks for {dict(self.unit.config)} (avbench or the profile "
                                  f"changed). Use another --out, or delete the directory to retrain it.")
        return record

    def read_eval(self, key: str) -> EvalRecord:
        return EvalRecord.from_json(read_json(self.eval_file(key)))

    def write_eval(self, key: str, record: EvalRecord, probs: np.ndarray | None = None) -> None:
        """Writes an evaluation: its record, then (for an ``ok`` one) its per-clip probabilities, in the order
        of the record's clips.  Older probabilities go first, so a kill after the record never leaves it
        beside another record's."""
        self.probability_file(key).unlink(missing_ok=True)
        write_json(self.eval_file(key), record.to_json())
        crash_point("evaluation-record")
        if probs is not None:
            write_npz(self.probability_file(key), clip_id=np.asarray(record.predictions["clip_id"]).astype(str),
                      probs=np.asarray(probs, dtype=np.float32))

    def read_probabilities(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """The clip ids and class probabilities (clips x classes) of an ``ok`` evaluation."""
        path = self.probability_file(key)
        try:
            with np.load(path) as f:
                return f["clip_id"], f["probs"]
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"{path}: unreadable probabilities ({exc}); delete it and rerun the run's command to "
                            "score the condition again.") from None

    def begin_training(self) -> None:
        """Records the unit's identity before its first epoch (checked for staleness on resume)."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.path / "identity.json", {"unit": self.unit.to_json()})

    def write_progress(self, epoch: int, epochs: int, seconds_per_epoch: float) -> None:
        """``progress.json``: the last finished epoch, for ``avbench status`` (epoch, time left)."""
        write_json(self.path / "progress.json", {"epoch": epoch, "epochs": epochs,
                                                 "seconds_per_epoch": seconds_per_epoch, "time": time.time()})

    def read_progress(self) -> dict[str, Any] | None:
        try:
            return read_json(self.path / "progress.json")
        except (OSError, DataError):
            return None

    def finish_training(self, record: TrainRecord) -> None:
        """Writes ``train.json`` and removes what only a unit in training needs."""
        write_json(self.train_file, record.to_json())
        for name in ("train_state.pt", "identity.json", "progress.json"):
            (self.path / name).unlink(missing_ok=True)

    def write_record(self, record: TrainRecord, evals: list[EvalRecord]) -> None:
        """``record.json``: the training record and every evaluation in one file."""
        write_json(self.path / "record.json", record.to_json() | {"evaluations": [e.to_json() for e in evals]})

    def write_error(self, error: ErrorRecord) -> str:
        """Writes ``error.json``; returns '' or why it could not be written (the outcome still carries it)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            write_json(self.error_file, error.to_json())
            return ""
        except OSError as exc:
            return f" (and its error record could not be written: {exc})"

    def clear_error(self) -> None:
        self.error_file.unlink(missing_ok=True)

    def discard(self) -> None:
        """Removes a stale unit's files: it retrains from scratch."""
        shutil.rmtree(self.path, ignore_errors=True)

    # ---------------------------------------------------------------- locks
    @contextmanager
    def lock(self, *, wait: bool = True) -> Iterator[bool]:
        """Holds the unit's lock while the body runs; yields whether it was acquired.

        A second process asking for the same unit waits (``wait``) and then finds it finished, so two
        executors on one run directory never train a unit twice or interleave its files.
        """
        with file_lock(lock_path(self.out, self.unit), wait=wait) as fd:
            if fd is not None:
                os.ftruncate(fd, 0)  # who holds it, for `avbench status` (not atomic: only read while held)
                os.write(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                         "started": time.time()}).encode())
            yield fd is not None

    def holder(self) -> dict[str, Any] | None:
        """Who runs the unit now: host, pid and start time, or None when no process holds its lock."""
        return holder(self.out, str(self.path.relative_to(self.out)))


def _digest(unit: UnitKey | str) -> str:
    return hashlib.sha1(str(unit if isinstance(unit, str) else unit.path).encode()).hexdigest()[:20]


def lock_path(out: Path, unit: UnitKey | str) -> Path:
    """The lock file of a unit, or of the unit directory ``unit`` (relative to ``out``)."""
    return Path(out) / "locks" / f"{_digest(unit)}.lock"


def spec_name(unit: UnitKey) -> str:
    """The file name of a unit's spec: readable, and unique per unit directory."""
    return f"{unit.model}-{unit.regime}-seed{unit.seed:02d}-{_digest(unit)[:10]}.json"


def open_lock(path: Path) -> int:
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
    fd = open_lock(path)
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


def _lock_error(path: Path, exc: OSError) -> DataError:
    return DataError(f"{path}: cannot take this lock ({exc.strerror or exc}). The run directory must be "
                     "writable and on a file system with flock support (e.g. Lustre mounted with -o flock; NFS "
                     "without local_lock=flock).")


def holder(out: Path, unit: UnitKey | str) -> dict[str, Any] | None:
    """Who holds the lock of the unit (or of the unit directory ``unit``, relative to ``out``):
    host, pid and start time, or None when no process holds it."""
    path = lock_path(out, unit)
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
