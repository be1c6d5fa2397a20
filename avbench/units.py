"""One unit as a self-contained task: what any executor (a joblib worker, a Dask or Ray worker, a
SLURM array job, ``avbench run-unit``) hands the worker, and what the worker hands back.

A task carries everything by value (store path, the unit's split, profile, device request,
threads), so the worker (:mod:`avbench.worker`) needs no registry of runs and no state from the
process that planned it.  Planning makes tasks, executors carry them, the worker runs them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from avbench.results import EvalRecord, TrainRecord, UnitKey, read_json
from avbench.unitdir import ErrorRecord, UnitDir
from avbench.validation import DataError

#: Version of the unit specs ``avbench plan --emit`` writes; 2: a spec may carry given weights, which
#: a worker of version 1 would ignore and train the unit instead, so it refuses the spec.
SPEC_SCHEMA = 2

# Bump whenever the same unit would train or score differently for reasons outside the model
# (data pipeline, selection rule, schedule).  2: per-trial z-normalisation from the training
# partition, selection on the dev cross-entropy of the averaged heads, no patience in `paper`.
# Which random numbers a kernel draws is not semantics: CUDA and CPU already draw different
# dropout masks for the same seed, and the CPU kernels' 16-bit masks (avbench/models/fast_ops.py)
# keep every rate within 1e-4 of the configured one, so they did not bump this.
TRAINING_SEMANTICS = 2


def unit_semantics(model: str) -> str:
    """The semantics part of a unit's identity: the model family's version and the training code's."""
    from avbench.models import get_model_meta

    return f"model={get_model_meta(model).semantics_version},training={TRAINING_SEMANTICS}"


def inapplicable(model: str, condition) -> str:
    """Why ``model`` is not scored under ``condition`` ('' when it is): the condition removes every
    modality the model reads."""
    from avbench.models import get_model_meta

    modalities = set(get_model_meta(model).modalities)
    return (f"{model} reads only {', '.join(sorted(modalities))}, which {condition.name} removes"
            if modalities <= condition.removes() else "")


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
        bars: The worker also draws progress bars (a worker in the terminal's own process).
        weights: For a unit of regime ``pretrained``, its given weights
            (:class:`avbench.pretrained.GivenWeights` as JSON): the worker loads them instead of
            training.  None for every trained unit.
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
    bars: bool = False
    weights: dict[str, Any] | None = None

    @property
    def unit_dir(self) -> Path:
        return Path(self.out) / self.unit.path

    @property
    def dir(self) -> UnitDir:
        return UnitDir(self.out, self.unit)

    @property
    def condition_keys(self) -> list[str]:
        from avbench.conditions import Condition

        return [Condition(*c).key for c in self.conditions]

    @property
    def label(self) -> str:
        return self.unit.title

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": SPEC_SCHEMA, "corpus": self.corpus, "split": self.split,
                "splits_id": self.splits_id, "profile": self.profile, "out": self.out, "device": self.device,
                "threads": self.threads, "unit": self.unit.to_json(), "label": self.unit.label,
                "conditions": [list(c) for c in self.conditions], "epoch_lines": self.epoch_lines,
                "weights": self.weights}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "UnitTask":
        unit = replace(UnitKey.from_json(d["unit"]), label=d.get("label", ""))
        return cls(d["corpus"], dict(d["split"]), d["splits_id"], dict(d["profile"]), d["out"], d["device"],
                   int(d["threads"]), unit, tuple((c[0], c[1], c[2]) for c in d["conditions"]),
                   bool(d.get("epoch_lines", False)), weights=d.get("weights"))


@dataclass
class UnitOutcome:
    """What a worker reports: the records of a finished unit, or the error record of a failed one."""

    unit: UnitKey
    record: TrainRecord | None = None
    evals: list[EvalRecord] = field(default_factory=list)
    trained: bool = False
    error: ErrorRecord | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


def read_task(path: str | os.PathLike) -> UnitTask:
    """A spec written by ``avbench plan --emit``, refused with the file named when it is not one."""
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
