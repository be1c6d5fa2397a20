"""A run: plan -> executor.map(tasks) -> finish.

:mod:`avbench.planning` turns the arguments into units and tasks, each unit's
:class:`~avbench.unitdir.UnitDir` says where it stands, finished units are read back here
(JSON only: no model built, no lock taken), the pending ones go to the executor
(:mod:`avbench.executors`), whose workers (:mod:`avbench.worker`) train and score them, and
:func:`finish` writes the protocol manifests and ``results.csv`` from the records.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch
from tqdm.auto import tqdm

from avbench.atomic import remove_stale_temporaries
from avbench.executors import check_options, get_executor, make_executor
from avbench.planning import RunPlan, dry_run as plan_dry_run, prepare, resume_message, write_plan
from avbench.profiles import Profile
from avbench.protocol import Protocol
from avbench.provenance import provenance
from avbench.results import ManifestEntry, ProtocolManifest, collect, write_manifest, write_table
from avbench.robustness import with_summaries
from avbench.unitdir import ErrorRecord
from avbench.units import UnitOutcome
from avbench.validation import DataError


@dataclass
class RunSummary:
    """What :func:`run` did, for the CLI to print."""

    table: pd.DataFrame
    out: Path
    trained: int = 0
    reused: int = 0
    train_seconds: float = 0.0  # recorded training time of the units this run trained
    eval_seconds: float = 0.0   # recorded evaluation time of those units' conditions
    not_applicable: list[str] = field(default_factory=list)
    # a dry run's plan: one line per unit it would train (or resume) and per trained unit it would reuse
    to_train: list[str] = field(default_factory=list)
    to_reuse: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failed: list[ErrorRecord] = field(default_factory=list)  # error records of units that failed
    profile_note: str = ""  # set when the profile differs from the registered one of its name


def run(protocol: str | Protocol, models: list[str] | None = None, *, corpus: str | Path = "synthetic",
        profile: str | Profile = "quick", seeds: int | None = None, out: str | Path = "runs/avbench",
        device: str = "auto", options: dict[str, Any] | None = None, progress: bool = True,
        echo: Callable[[str], None] = print, jobs: int | None = None, splits: str | None = None,
        threads: int | None = None, dry_run: bool = False, executor: str = "local",
        executor_options: dict[str, Any] | None = None, weights: Any = None) -> RunSummary:
    """Runs a protocol (and the protocols of its group) and returns the tidy results.

    Args:
        protocol: Registered protocol name, YAML path, or :class:`Protocol`; or several names, run
            as their union (:func:`avbench.protocol.resolve`).
        models: Model names; default: the protocol's own model set.
        corpus: Registered corpus name or feature-store path.
        profile: ``quick``, ``paper`` or ``smoke`` (or a :class:`Profile`).
        seeds: Number of trials (splits 0..N-1); default: the profile's.
        out: Run directory; rerunning with the same one resumes and reuses.
        device: ``auto``, ``cpu`` or ``cuda``.
        options: Model options applied on top of each variant: ``key`` to every model, ``MODEL.key``
            to one (``--set k=v``, ``--set auxformer.k=v``).
        progress: Show progress bars.
        echo: Where to print one line per unit.
        jobs: The local executor's units at once (joblib processes; one GPU each on CUDA);
            default: the cores (the visible GPUs on CUDA), at most the pending units.
        splits: Name of partitions registered with ``avbench data splits import`` (e.g. the
            authors' own) instead of the store's drawn splits; ``seeds`` defaults to all of them.
        threads: Torch threads per unit; default 1 on every executor.  Predictions are bitwise
            reproducible for the same seed and threads, whatever the executor and ``jobs``; each
            record's provenance says how many a unit used.  The calling process keeps its own
            setting.
        dry_run: Plan only: the summary lists the units that would be trained (or resumed), those
            that would be reused, and the conditions not applicable; nothing is trained or written.
        executor: Where units run (:mod:`avbench.executors`): ``local`` (this process, or ``jobs``
            joblib processes), ``dask``, ``ray``, ``slurm`` or a plugin's.  Results are the same on
            each for the same seeds and ``threads``.
        executor_options: The executor's own options (``ExecutorOption`` names it declares:
            ``scheduler`` for dask, ``address`` for ray, ``partition``, ``gpus``, ... for slurm).
        weights: Given weights, ``{model: path}`` or ``MODEL=PATH`` items (``--weights``): those models are not
            trained but loaded (a state dict of the released AuxFormer code, or an avbench
            ``model.pt``) and scored under every condition, as units of regime ``pretrained``
            (:mod:`avbench.pretrained`).

    Raises:
        UnitsFailed: Some units raised; every other unit finished and ``results.csv`` holds their
            rows.  Each failure's traceback, host and versions are in ``error.json`` beside the
            unit; running the same call again retries the failed units and reuses the rest.

    Example:
        Two trials of AuxFormer, ``smoke`` profile, on a tiny synthetic corpus (seconds on a CPU);
        the same call again trains nothing:

        >>> import tempfile
        >>> from pathlib import Path
        >>> from avbench.data.synthetic import generate_synthetic
        >>> tmp = tempfile.TemporaryDirectory()
        >>> store = generate_synthetic(Path(tmp.name) / "store", n_speakers=9, clips_per_speaker=4, visual_dim=8)
        >>> summary = run("optimized", ["auxformer"], corpus=store.path, profile="smoke", seeds=2,
        ...               out=Path(tmp.name) / "run", progress=False, echo=lambda line: None)
        >>> summary.trained, sorted(summary.table["condition"].unique())
        (2, ['full', 'train'])
        >>> run("optimized", ["auxformer"], corpus=store.path, profile="smoke", seeds=2,
        ...     out=Path(tmp.name) / "run", progress=False, echo=lambda line: None).reused
        2
        >>> tmp.cleanup()
    """
    engine_cls = get_executor(executor)  # only the named plugin is imported
    engine_options = dict(executor_options or {}) | ({} if jobs is None else {"jobs": jobs})
    check_options(executor, engine_cls, engine_options)
    plan_ = prepare(protocol, models, corpus=corpus, profile=profile, seeds=seeds, out=out, device=device,
                    options=options, splits=splits, threads=threads, dry_run=dry_run,
                    runs_here=engine_cls.runs_here, echo=echo, weights=weights)
    summary = RunSummary(table=pd.DataFrame(), out=plan_.out, profile_note=profile_note(plan_.profile))
    if dry_run:
        planned = plan_dry_run(plan_)
        summary.to_train, summary.to_reuse = planned.to_train, planned.to_reuse
        summary.not_applicable, summary.notes = planned.not_applicable, planned.notes
        return summary
    engine = make_executor(executor, device=plan_.device, options=engine_options)
    remove_stale_temporaries(plan_.out)  # left by a killed run
    states = plan_.states()
    if message := resume_message(plan_, states):
        echo(message)
    for unit, state in states.items():
        if state.name == "stale":
            echo(f"{plan_.unit_dir(unit).path}: retraining {unit.title}: {state.reason}.")
    write_plan(plan_)
    finished = [u for u, s in states.items() if s.finished]
    pending = plan_.tasks({u for u, s in states.items() if not s.finished}, epoch_lines=progress,
                          bars=progress and engine_cls.runs_here)
    # disable=None: no bar when stderr is not a terminal (a log file would get thousands of lines)
    sweep = tqdm(total=len(states), disable=None if progress else True, desc=f"{plan_.protocols[0].name} sweep",
                 unit="unit")
    outcomes = itertools.chain((read_finished(plan_, u) for u in finished), engine.map(pending))
    records: dict[str, Any] = {}
    for i, outcome in enumerate(outcomes, 1):
        unit = outcome.unit
        sweep.update()
        where = f"[{i}/{len(states)}] {unit.title}"
        if outcome.failed:
            summary.failed.append(outcome.error)
            echo(f"{where}: FAILED ({outcome.error.summary}); error record: {plan_.unit_dir(unit).error_file}")
            continue
        record, evals = outcome.record, outcome.evals
        records[str(unit.path / "train.json")] = record
        records |= {str(unit.path / "evals" / f"{c.key}.json"): e for c, e in zip(plan_.units[unit], evals)}
        summary.trained += outcome.trained
        summary.reused += not outcome.trained
        if outcome.trained:  # the time this run spent; reused units' time was spent by earlier runs
            summary.train_seconds += record.train_metrics.get("train_seconds", 0.0)  # none for given weights
            summary.eval_seconds += sum(e.seconds for e in evals)
        summary.not_applicable += [f"{unit.model} / {e.condition}: {e.reason}" for e in evals
                                   if e.status == "not_applicable" and e.unit["seed"] == 0]
        done = ("given weights loaded" if record.weights else "trained") if outcome.trained else "reused"
        echo(f"{where}: {done}, {len(evals)} condition(s) scored")
    sweep.close()
    summary.table = finish(plan_, records)
    if summary.failed:
        raise UnitsFailed(summary)
    return summary


def read_finished(plan_: RunPlan, unit) -> UnitOutcome:
    """A finished unit's outcome, read from its JSON records alone (no model, no lock, no write)."""
    d = plan_.unit_dir(unit)
    return UnitOutcome(unit, d.read_train(), [d.read_eval(c.key) for c in plan_.units[unit]], trained=False)


def profile_note(profile: Profile) -> str:
    """What the summary says when units are filed under a modified profile's own key."""
    return (f"profile {profile.name!r} differs from the registered one: its units are filed under "
            f"{profile.key!r}" if profile.modified else "")


def finish(plan_: RunPlan, records: dict[str, Any] | None = None) -> pd.DataFrame:
    """Writes each protocol's manifest and ``results.csv`` from every record present, and returns
    the rows of this run's protocols (a failed unit's rows are absent until a rerun computes them).

    ``records``: this run's records by path (relative to the run directory), already read: each
    record is read once per run."""
    out = plan_.out
    prov = provenance(torch.device(plan_.device if plan_.runs_here else "cpu"))  # where the run was submitted
    for p in plan_.protocols:
        entries = [ManifestEntry(u.key(), str(u.path / "evals" / f"{c.key}.json"))
                   for q, u, cs in plan_.work if q is p for c in cs]
        train = [ManifestEntry(u.key(), str(u.path / "train.json")) for q, u, _ in plan_.work if q is p]
        write_manifest(out / "protocols" / f"{p.name}@{plan_.store_id}.json",  # one per corpus
                       ProtocolManifest(p.name, p.source, plan_.profile.name, plan_.n_seeds,
                                        {"name": plan_.store.name, "checksum": plan_.store.checksum,
                                         "synthetic": bool(plan_.store.synthetic), "path": str(plan_.store.path)},
                                        prov, entries, train))
    table = with_summaries(collect(out, records), out)
    write_table(out / "results.csv", table)
    return table[table["protocol"].isin([p.name for p in plan_.protocols])].reset_index(drop=True)


class UnitsFailed(DataError):
    """Some units of a run raised.  The others finished and their results were written; the
    summary lists both.  A rerun retries the failed units and reuses the rest."""

    def __init__(self, summary: RunSummary):
        self.summary = summary
        groups: dict[str, list[str]] = {}
        for e in summary.failed:
            groups.setdefault(e.summary, []).append(e.label)
        lines = [f"  {', '.join(labels[:4])}{f' and {len(labels) - 4} more' if len(labels) > 4 else ''}: {msg}"
                 for msg, labels in groups.items()]
        super().__init__(f"{len(summary.failed)} unit(s) failed (error records: error.json in each unit directory "
                         f"under {summary.out}):\n" + "\n".join(lines) + "\nThe other units finished; their "
                         f"results are in {summary.out / 'results.csv'}. Run the same command again to retry the "
                         "failed units (finished ones are reused).")
