"""Units of work: train each (model, variant, regime, seed) once, score every condition from it.

The runner never draws anything itself: splits come from the corpus's split
file, masks from each condition's seeded generator, initial weights from the
trial seed.  Everything it computes is written at once and atomically, so a
rerun skips finished units and conditions and a killed run resumes (mid-
training from the last finished epoch).
"""

from __future__ import annotations

import itertools
import json
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from avbench.atomic import atomic_path, remove_stale_temporaries
from avbench.checkpoint import load_checkpoint
from avbench.faults import crash_point
from avbench.conditions import Condition, check_store, get_kind
from avbench.devices import DEVICES
from avbench.models import count_parameters, create_model, get_model_meta
from avbench.models.base import check_config
from avbench.normalization import Normalizer, fit_normalizer
from avbench.profiles import Profile, get_profile
from avbench.provenance import provenance
from avbench.protocol import (DEFAULT_VARIANT, Protocol, check_model_options, members, models_of, resolve,
                              with_options)
from avbench.results import (EvalRecord, ManifestEntry, ProtocolManifest, TrainRecord, UnitKey, canonical_config,
                             collect, corpus_id, read_json, shift_suffix, write_json, write_manifest, write_npz,
                             write_table)
from avbench.robustness import with_summaries
from avbench.units import is_stale, trained_semantics
from avbench.training import autocast, fit, f1_scores, predict, resolve_device
from avbench.executors import make_executor
from avbench.validation import DataError, ValidationError, check_int, check_path_component

# Bump whenever the same unit would train or score differently for reasons outside the model
# (data pipeline, selection rule, schedule).  2: per-trial z-normalisation from the training
# partition, selection on the dev cross-entropy of the averaged heads, no patience in `paper`.
# Which random numbers a kernel draws is not semantics: CUDA and CPU already draw different
# dropout masks for the same seed, and the CPU kernels' 16-bit masks (avbench/models/fast_ops.py)
# keep every rate within 1e-4 of the configured one, so they did not bump this.
TRAINING_SEMANTICS = 2


def unit_semantics(model: str) -> str:
    """The semantics part of a unit's identity: the model family's version and the training code's."""
    return f"model={get_model_meta(model).semantics_version},training={TRAINING_SEMANTICS}"


@dataclass
class RunSummary:
    """What :func:`run` did, for the CLI to print."""

    table: pd.DataFrame
    out: Path
    trained: int = 0
    reused: int = 0
    train_seconds: float = 0.0  # recorded training time of every unit of the run
    eval_seconds: float = 0.0   # recorded evaluation time of every condition of the run
    not_applicable: list[str] = field(default_factory=list)
    # a dry run's plan: one line per unit it would train (or resume) and per finished unit it would reuse
    to_train: list[str] = field(default_factory=list)
    to_reuse: list[str] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)  # error records of units that raised


def plan(protocol: Protocol, models: list[str] | None, *, corpus: str, profile: Profile, seeds: int,
         options: dict[str, Any] | None = None) -> list[tuple[UnitKey, tuple[Condition, ...]]]:
    """The units a protocol needs and the conditions each is scored under.

    A variant that leaves the model as it is (``ModelMeta.is_default``, e.g. ``pos_enc=true``) is
    planned as the default unit (trained once, shared) labelled with the variant's name.
    """
    work: list[tuple[UnitKey, tuple[Condition, ...]]] = []
    model_set = list(models or protocol.models)
    shift = protocol.train_shift_ms
    suffix = shift_suffix(shift)
    for name in model_set:
        meta = get_model_meta(name)
        base = with_options(Protocol("_", variants=(DEFAULT_VARIANT,)), options, name)[0]
        for variant in with_options(protocol, options, name):
            config = {**profile.model_config(meta), **variant.config}
            check_config(name, config)
            vname, label = check_path_component(variant.name, "set", "avbench run") + suffix, ""
            if variant.name != base.name and meta.is_default(variant.config, profile.model_config(meta) | base.config):
                config = {**profile.model_config(meta), **base.config}
                vname, label = base.name + suffix, variant.name + suffix
            default = meta.is_default(config, profile.model_config(meta))
            for regime in protocol.regimes:
                for seed in range(seeds):
                    work.append((UnitKey(corpus, profile.key, name, vname, config, regime, seed, shift,
                                         unit_semantics(name), default, label), protocol.conditions))
    for name in protocol.needs:
        if name in model_set:
            continue
        meta = get_model_meta(name)
        config = profile.model_config(meta)
        for regime in protocol.needs_regimes or protocol.regimes:
            for seed in range(seeds):
                work.append((UnitKey(corpus, profile.key, name, DEFAULT_VARIANT.name, config, regime, seed,
                                     semantics=unit_semantics(name), is_default=True),
                             protocol.needs_conditions or protocol.conditions))
    return work


def check_buildable(units, store) -> None:
    """Builds every distinct (model, config) once on the ``meta`` device (no memory, no time), so
    that options a model cannot be built with (beyond its declared constraints, which
    ``check_config`` already enforced: a plugin's own checks) fail before any training, with a message naming model and options."""
    for name, config in sorted({(u.model, canonical_config(u.config)) for u in units}):
        try:
            with torch.device("meta"):
                create_model(name, num_classes=len(store.label_names), audio_dim=store.audio_dim,
                             visual_dim=store.visual_dim, **json.loads(config))
        except ValidationError:
            raise
        except Exception as exc:  # a builder's own failure: still the options' fault, not avbench's
            raise ValidationError(f"Model {name!r} cannot be built with the options {config} "
                                  f"({type(exc).__name__}: {exc}). Check the --set values against "
                                  f"`avbench models show {name}`.") from None


def inapplicable(model: str, condition: Condition) -> str:
    """Why ``model`` is not scored under ``condition`` ('' when it is): the condition removes every
    modality the model reads."""
    modalities = set(get_model_meta(model).modalities)
    return (f"{model} reads only {', '.join(sorted(modalities))}, which {condition.name} removes"
            if modalities <= condition.removes() else "")


def dry_plan(summary: RunSummary, units: dict[UnitKey, list[Condition]], out: Path) -> RunSummary:
    """Fills a dry run's summary: each unit to train (or resume mid-training) or to reuse (finished,
    of the same semantics), with the conditions still to score, and what is not applicable."""
    for unit, conditions in units.items():
        d = out / unit.path
        todo = sum(not (d / "evals" / f"{c.key}.json").exists() for c in conditions)
        line = f"{unit.title}: {todo} of {len(conditions)} condition(s) to score"
        done = (d / "train.json").exists() and (d / "model.pt").exists()
        if done and not is_stale(d, unit.semantics):
            summary.to_reuse.append(line)
        else:
            resumed = (d / "train_state.pt").exists() and not done
            summary.to_train.append(line + (" (resumes from its last finished epoch)" if resumed else ""))
        summary.not_applicable += [f"{unit.model} / {c.name}: {why}" for c in dict.fromkeys(conditions)
                                   if unit.seed == 0 and (why := inapplicable(unit.model, c))]
    summary.not_applicable = list(dict.fromkeys(summary.not_applicable))
    return summary


def echo_resume(out: Path, units, echo: Callable[[str], None]) -> None:
    """Says when a run picks up earlier work in ``out``: how many of its units are finished and
    how many resume mid-training."""
    done = sum((out / u.path / "train.json").exists() for u in units)
    partial = sum((out / u.path / "train_state.pt").exists() for u in units)
    if done or partial:
        echo(f"Resuming in {out}: {done} of {len(units)} units already trained"
             + (f", {partial} resumed from their last finished epoch" if partial else "") + ".")


class Runner:
    """Executes units against one corpus, profile and device, writing under ``out``."""

    def __init__(self, store, splits, profile: Profile, out: Path, device: torch.device, progress: bool = True,
                 echo: Callable[[str], None] = print, splits_id: str = "",
                 epoch_echo: Callable[[str], None] | None = None):
        self.epoch_echo = epoch_echo  # one line per finished epoch (workers, whose bars would interleave)
        self.store, self.splits, self.profile = store, splits, profile
        self.splits_id = splits_id  # named partitions (--splits): part of every unit's corpus id
        self.out, self.device, self.progress, self.echo = Path(out), device, progress, echo
        self.prov = provenance(device)
        self._norms: dict[int, Normalizer] = {}  # per trial seed

    def _build(self, unit: UnitKey):
        torch.manual_seed(unit.seed)
        return create_model(unit.model, num_classes=len(self.store.label_names), audio_dim=self.store.audio_dim,
                            visual_dim=self.store.visual_dim, **unit.config)

    def _discard_stale(self, unit: UnitKey, d: Path) -> None:
        """Removes a unit directory written by code of other semantics, saying why.

        A directory is stale when its recorded identity (``train.json``, or ``identity.json`` for a
        unit still in training) names other semantics, or names none (written before semantics
        were recorded).  Its checkpoint, training state and evaluations go; the unit retrains.
        """
        if not is_stale(d, unit.semantics):
            return
        found = trained_semantics(d)
        self.echo(f"{d}: retraining {unit.title}: it was trained "
                  f"by avbench code of other semantics ({found or 'unrecorded, before semantics versions'}; "
                  f"now {unit.semantics}), so its results would not be those of this model.")
        shutil.rmtree(d)

    def normalizer(self, unit: UnitKey) -> Normalizer | None:
        """The unit's z-normalisation: training-partition statistics of its trial, fixed once per unit.

        Read from the unit directory when present (a resumed or reused unit keeps the statistics it
        was trained with), else computed from the split's train rows (cached per trial, shared by
        every model) and saved there.  None when the store says its features are normalised.
        """
        if self.store.normalized:
            return None
        path = self.out / unit.path / "normalization.npz"
        if path.exists():
            return Normalizer.load(path)
        if unit.seed not in self._norms:
            rows = self.splits[unit.seed].indices(self.store.speakers)["train"]
            self._norms[unit.seed] = fit_normalizer(self.store, rows)
        self._norms[unit.seed].save(path)
        return self._norms[unit.seed]

    def train(self, unit: UnitKey):
        """The dev-selected model of ``unit``, its record, and whether it was trained now (False when
        a finished record existed)."""
        d = self.out / unit.path
        self._discard_stale(unit, d)
        model = self._build(unit)
        if (d / "train.json").exists() and (d / "model.pt").exists():
            record = TrainRecord.from_json(read_json(d / "train.json"))
            if canonical_config(record.unit.config) != canonical_config(unit.config):
                raise ValidationError(f"{d}: this unit was trained with model config {dict(record.unit.config)}, "
                                      f"but this run asks for {dict(unit.config)} (avbench or the profile "
                                      f"changed). Use another --out, or delete the directory to retrain it.")
            model.load_state_dict(load_checkpoint(d / "model.pt"))
            return model.to(self.device), record, False
        d.mkdir(parents=True, exist_ok=True)
        write_json(d / "identity.json", {"unit": unit.to_json()})
        norm = self.normalizer(unit)
        split = self.splits[unit.seed]
        parts = split.indices(self.store.speakers)
        result = fit(model, self.store, parts["train"], parts["dev"], regime=unit.regime, profile=self.profile,
                     seed=unit.seed, device=self.device, state_path=d / "train_state.pt", progress=self.progress,
                     desc=unit.title,
                     train_shift_ms=unit.train_shift_ms, norm=norm, on_epoch=self._epoch_line(unit))
        model.load_state_dict(result.state_dict)
        with atomic_path(d / "model.pt") as tmp:
            torch.save(model.state_dict(), tmp)
        record = TrainRecord(
            unit=replace(unit, label=""), profile=self.profile.to_dict(),
            corpus={"name": self.store.name, "path": str(self.store.path), "checksum": self.store.checksum,
                    "synthetic": bool(self.store.synthetic)},
            split=split.to_json(),
            normalization=(norm.summary() | {"file": "normalization.npz"} if norm is not None
                           else {"source": "store.json says the features are already normalized"}),
            history=result.history, best_epoch=result.best_epoch,
            train_metrics={"seconds_per_epoch": result.seconds_per_epoch,
                           "train_seconds": float(sum(h["train_seconds"] for h in result.history)),
                           "epochs": len(result.history), "best_epoch": result.best_epoch,
                           "params": count_parameters(model)},
            provenance=self.prov)
        write_json(d / "train.json", record.to_json())
        (d / "train_state.pt").unlink(missing_ok=True)
        (d / "identity.json").unlink(missing_ok=True)
        return model, record, True

    def _epoch_line(self, unit: UnitKey) -> Callable[[dict[str, Any]], None] | None:
        if self.epoch_echo is None:
            return None
        name, epochs = unit.title, self.profile.epochs
        return lambda h: self.epoch_echo(f"  {name}: epoch {h['epoch']}/{epochs}, dev loss {h['dev_loss']:.3f} "
                                         f"({h['train_seconds']:.1f} s)")

    def evaluate(self, unit: UnitKey, model, conditions: tuple[Condition, ...]) -> list[Path]:
        """Scores ``model`` on the test partition under each condition not scored yet."""
        d = self.out / unit.path
        rows = self.splits[unit.seed].indices(self.store.speakers)["test"]
        norm = self.normalizer(unit)
        paths = []
        for c in conditions:
            path = d / "evals" / f"{c.key}.json"
            paths.append(path)
            if path.exists():
                continue
            why = inapplicable(unit.model, c)
            record = EvalRecord(c.name, c.level, replace(unit, label="").key(), "not_applicable", reason=why)
            if not why:
                self._save_masks(unit.seed, c, rows)
                start = time.perf_counter()
                pred, label = predict(model, self.store, rows, profile=self.profile, device=self.device,
                                      condition=c, trial_seed=unit.seed, norm=norm)
                record = replace(record, status="ok", reason="", metrics=f1_scores(label, pred),
                                 seconds=time.perf_counter() - start,
                                 predictions={"clip_id": self.store.manifest["clip_id"].to_numpy()[rows].tolist(),
                                              "label": label.tolist(), "pred": pred.tolist()})
            write_json(path, record.to_json())
            crash_point("evaluation")
        return paths

    def _save_masks(self, seed: int, c: Condition, rows: np.ndarray) -> None:
        """Stores the keep-masks of a condition whose kind draws them, once per trial (shared by all models)."""
        draw = get_kind(c.kind).keep_mask
        if draw is None:
            return
        path = self.out / "masks" / self.store_id / f"seed-{seed:02d}" / f"{c.key}.npz"
        if path.exists():
            return
        ids = self.store.manifest["clip_id"].to_numpy()[rows]
        n = self.store.manifest[f"{c.modality}_frames"].to_numpy()[rows]
        masks = [draw(int(k), c.level, c.rng(seed, str(i))) for i, k in zip(ids, n)]
        write_npz(path, clip_id=ids.astype(str), offsets=np.concatenate([[0], np.cumsum(n)]),
                  keep=np.concatenate(masks))

    @property
    def store_id(self) -> str:
        return corpus_id(self.store.name, self.store.checksum, self.splits_id)

    def run_unit(self, unit: UnitKey, conditions: tuple[Condition, ...]) -> tuple[TrainRecord, list[EvalRecord], bool]:
        """Trains (or reuses) ``unit``, scores it under ``conditions`` and writes its record.

        Returns the training record, the evaluation records and whether the unit was trained now.
        """
        model, record, trained = self.train(unit)
        evals = [EvalRecord.from_json(read_json(p)) for p in self.evaluate(unit, model, conditions)]
        write_json(self.out / unit.path / "record.json",
                   record.to_json() | {"evaluations": [e.to_json() for e in evals]})
        return record, evals, trained


def run(protocol: str | Protocol, models: list[str] | None = None, *, corpus: str | Path = "synthetic",
        profile: str | Profile = "quick", seeds: int | None = None, out: str | Path = "runs/avbench",
        device: str = "auto", options: dict[str, Any] | None = None, progress: bool = True,
        echo: Callable[[str], None] = print, jobs: int = 1, splits: str | None = None,
        threads: int | None = None, dry_run: bool = False, executor: str = "local",
        executor_options: dict[str, Any] | None = None) -> RunSummary:
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
        jobs: Units trained at once in separate processes (joblib), each with an equal share of the
            CPU threads.  Small (``quick``) models use 2 cores better as 2 one-thread jobs than as
            one two-thread job (benchmarks/README.md); on a GPU keep 1.
        splits: Name of partitions registered with ``avbench data splits import`` (e.g. the
            authors' own) instead of the store's drawn splits; ``seeds`` defaults to all of them.
        threads: Torch threads per unit; default: the process's threads divided by ``jobs``.
            Predictions are bitwise reproducible for the same seed and threads, whatever
            ``jobs``; each record's provenance says how many a unit used.  With ``jobs=1`` the
            calling process keeps this setting.
        dry_run: Plan only: the summary lists the units that would be trained (or resumed), those
            that would be reused, and the conditions not applicable; nothing is trained or written.
        executor: Where units run (:mod:`avbench.executors`): ``local`` (this process, or ``jobs``
            joblib processes), ``dask``, ``ray`` or ``slurm``.  Results are the same on each for
            the same seeds and ``threads`` (default 1 per unit off this machine).
        executor_options: The engine's options: ``scheduler`` (dask), ``address`` (ray),
            ``slurm`` (a mapping of :class:`avbench.executors.SlurmExecutor` arguments).

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
    plan_ = prepare(protocol, models, corpus=corpus, profile=profile, seeds=seeds, out=out, device=device,
                    options=options, progress=progress, echo=echo, jobs=jobs, splits=splits, threads=threads,
                    dry_run=dry_run, executor=executor)
    summary = RunSummary(table=pd.DataFrame(), out=plan_.out)
    if dry_run:
        return dry_plan(summary, plan_.units, plan_.out)
    engine = make_executor(executor, jobs=jobs, runner=plan_.runner if jobs == 1 else None, device=device,
                           **(executor_options or {}))
    echo_resume(plan_.out, plan_.units, echo)
    write_plan(plan_)
    tasks = plan_.tasks(epoch_lines=progress and not (executor == "local" and jobs == 1))  # else bars
    # disable=None: no bar when stderr is not a terminal (a log file would get thousands of lines)
    sweep = tqdm(total=len(tasks), disable=None if progress else True, desc=f"{plan_.protocols[0].name} sweep",
                 unit="unit")
    # finished units are read back here; only pending ones go to the engine (a SLURM array of the
    # pending units, not of all of them)
    done = [executor != "local" and t.finished() for t in tasks]  # a local run reads them back as it goes
    finished, pending = [t for t, d in zip(tasks, done) if d], [t for t, d in zip(tasks, done) if not d]
    outcomes = itertools.chain(make_executor("local", runner=plan_.runner).map(finished), engine.map(pending))
    for i, outcome in enumerate(outcomes, 1):
        unit = outcome.unit
        sweep.update()
        where = f"[{i}/{len(tasks)}] {unit.title}"
        if outcome.failed:
            summary.failed.append(outcome.error)
            echo(f"{where}: FAILED ({outcome.error['error']}: {outcome.error['message']}); "
                 f"error record: {plan_.out / unit.path / 'error.json'}")
            continue
        record, evals = outcome.record, outcome.evals
        summary.trained += outcome.trained
        summary.reused += not outcome.trained
        summary.train_seconds += record.train_metrics["train_seconds"]
        summary.eval_seconds += sum(e.seconds for e in evals)
        summary.not_applicable += [f"{unit.model} / {e.condition}: {e.reason}" for e in evals
                                   if e.status == "not_applicable" and e.unit["seed"] == 0]
        echo(f"{where}: {'trained' if outcome.trained else 'reused'}, {len(evals)} condition(s) scored")
    sweep.close()
    summary.table = finish(plan_)
    if summary.failed:
        raise UnitsFailed(summary)
    return summary


@dataclass
class RunPlan:
    """A run resolved and planned: the runner (store, splits, profile, device), the protocols it
    serves, each unit with the union of its conditions, and how workers run them."""

    runner: Runner
    protocols: list[Protocol]
    work: list[tuple[Protocol, UnitKey, tuple[Condition, ...]]]
    units: dict[UnitKey, list[Condition]]
    n_seeds: int
    threads: int
    device: str  # what each worker resolves (the resolved device locally; the request on a cluster)

    @property
    def out(self) -> Path:
        return self.runner.out

    def tasks(self, epoch_lines: bool = False) -> list:
        """One self-contained task per unit (:mod:`avbench.units`), in plan order; ``epoch_lines``:
        workers print a line per finished epoch."""
        from avbench.units import make_task

        return [make_task(self.runner, u, cs, self.device, self.threads, epoch_lines) for u, cs in self.units.items()]


def prepare(protocol: str | Protocol, models: list[str] | None = None, *, corpus: str | Path = "synthetic",
            profile: str | Profile = "quick", seeds: int | None = None, out: str | Path = "runs/avbench",
            device: str = "auto", options: dict[str, Any] | None = None, progress: bool = True,
            echo: Callable[[str], None] = print, jobs: int = 1, splits: str | None = None,
            threads: int | None = None, dry_run: bool = False, executor: str = "local") -> RunPlan:
    """Checks every option, opens corpus and splits and plans the units of :func:`run` (same
    arguments), training nothing; ``avbench plan`` stops here."""
    from avbench.data import load_splits, open_corpus  # deferred: keeps `avbench models` fast
    from avbench.data.splits import audit_splits
    from avbench.data.integrity import ensure_verified
    from avbench.executors import EXECUTORS
    from avbench.validation import check_choice

    check_choice(executor, "executor", "avbench run", EXECUTORS)
    prof = get_profile(profile)
    n_seeds = prof.seeds if seeds is None else seeds
    if not isinstance(n_seeds, int) or isinstance(n_seeds, bool) or n_seeds < 1:
        raise ValidationError(f"The 'seeds' parameter of avbench run must be a positive integer. Got {seeds!r} instead.")
    proto = resolve(protocol)
    for name in models or []:
        get_model_meta(name)  # unknown names fail before any work
    check_model_options(options, proto, models)
    check_int(jobs, "jobs", "avbench run", minimum=1)
    local = executor == "local"
    if threads is None:  # a cluster's workers are not this machine: one thread each unless told
        threads = max(1, torch.get_num_threads() // jobs) if local else 1
    threads = check_int(threads, "threads", "avbench run", minimum=1)
    if local and jobs == 1:
        torch.set_num_threads(threads)  # before the Runner, whose provenance records it
    if local:
        dev = resolve_device(device)
        autocast(dev, prof.precision)  # a precision the device cannot use is refused before any work
        if jobs > 1 and dev.type == "cuda" and jobs > torch.cuda.device_count():
            raise ValidationError(f"The 'jobs' parameter of avbench run must be at most the number of GPUs "
                                  f"({torch.cuda.device_count()}) on CUDA: each worker takes one GPU. Got {jobs} instead.")
        request = str(dev)
    else:  # resolved by each worker, which may have a GPU the submitting machine lacks
        check_choice(device, "device", "avbench run", DEVICES)
        dev, request = torch.device("cpu"), device
        if device == "cpu":
            autocast(dev, prof.precision)  # refused here as on a local run, not by every worker
    store = open_corpus(corpus)
    if not dry_run:
        ensure_verified(store)  # never train on bytes other than those store.json describes
    splits_id = ""
    if splits is None:
        trial_splits = load_splits(store, n_seeds)
    else:
        from avbench.data.published_splits import load_named_splits

        trial_splits, splits_id = load_named_splits(store, splits)
        n_seeds = len(trial_splits) if seeds is None else n_seeds
        if n_seeds > len(trial_splits):
            raise ValidationError(f"The 'seeds' parameter of avbench run must be at most {len(trial_splits)}, the "
                                  f"number of trials in the partitions {splits!r}. Got {seeds!r} instead.")
        trial_splits = trial_splits[:n_seeds]
    out = Path(out)
    if not dry_run:
        remove_stale_temporaries(out)  # left by a killed run
    runner = Runner(store, trial_splits, prof, out, dev, progress, echo, splits_id=splits_id)
    protocols = members(proto)
    work = [(p, u, cs) for p in protocols
            for u, cs in plan(p, models_of(proto, p, models),
                              corpus=runner.store_id, profile=prof, seeds=n_seeds, options=options)]
    # one unit may serve several protocols: train once, score the union of their conditions
    by_unit: dict[UnitKey, list[Condition]] = {}
    for _, u, cs in work:
        by_unit.setdefault(u, [])
        by_unit[u] += [c for c in cs if c not in by_unit[u]]
    check_buildable(by_unit, store)
    check_store((c for cs in by_unit.values() for c in cs), store)
    # after the checks of the request itself: warns of thin partitions, refuses untrainable ones
    runner.splits = audit_splits(trial_splits, store, echo)
    return RunPlan(runner, protocols, work, by_unit, n_seeds, threads, request)


def write_plan(plan_: RunPlan) -> None:
    """Records the planned units under ``OUT/plans/`` (merged with earlier invocations'), so that
    ``avbench status`` can tell pending units from finished ones without the command line."""
    from avbench.units import file_lock

    path = plan_.out / "plans" / f"{plan_.protocols[0].name}@{plan_.runner.store_id}.json"
    units = {str(u.path): {"unit": u.to_json(), "label": u.label, "conditions": [c.key for c in cs]}
             for u, cs in plan_.units.items()}
    with file_lock(plan_.out / "locks" / "plans.lock"):  # another run may be merging into it too
        if path.exists():
            units = read_json(path)["units"] | units
        write_json(path, {"schema_version": 1, "units": units})


def emit_commands(plan_: RunPlan, path: Path) -> int:
    """Writes a spec (``OUT/specs/*.json``) per unit still to train or score and ``path`` with one
    ``avbench run-unit SPEC`` line each; returns how many.  Records the plan for ``avbench status``."""
    import shlex

    from avbench.units import spec_name

    write_plan(plan_)
    lines = []
    for task in plan_.tasks():
        if task.finished():
            continue
        spec = (plan_.out / "specs" / spec_name(task.unit)).resolve()
        write_json(spec, task.to_json())
        lines.append(f"avbench run-unit {shlex.quote(str(spec))}\n")
    with atomic_path(Path(path)) as tmp:
        tmp.write_text("".join(lines))
    return len(lines)


def finish(plan_: RunPlan) -> pd.DataFrame:
    """Writes each protocol's manifest and ``results.csv`` from every record present, and returns
    the rows of this run's protocols (a failed unit's rows are absent until a rerun computes them)."""
    runner, out = plan_.runner, plan_.out
    for p in plan_.protocols:
        entries = [ManifestEntry(u.key(), str(u.path / "evals" / f"{c.key}.json"))
                   for q, u, cs in plan_.work if q is p for c in cs]
        train = [ManifestEntry(u.key(), str(u.path / "train.json")) for q, u, _ in plan_.work if q is p]
        write_manifest(out / "protocols" / f"{p.name}@{runner.store_id}.json",  # one per corpus
                       ProtocolManifest(p.name, p.source, runner.profile.name, plan_.n_seeds,
                                        {"name": runner.store.name, "checksum": runner.store.checksum,
                                         "synthetic": bool(runner.store.synthetic), "path": str(runner.store.path)},
                                        runner.prov, entries, train))
    table = with_summaries(collect(out), out)
    write_table(out / "results.csv", table)
    return table[table["protocol"].isin([p.name for p in plan_.protocols])].reset_index(drop=True)


class UnitsFailed(DataError):
    """Some units of a run raised.  The others finished and their results were written; the
    summary lists both.  A rerun retries the failed units and reuses the rest."""

    def __init__(self, summary: RunSummary):
        self.summary = summary
        groups: dict[str, list[str]] = {}
        for e in summary.failed:
            groups.setdefault(f"{e['error']}: {e['message']}", []).append(e["label"])
        lines = [f"  {', '.join(labels[:4])}{f' and {len(labels) - 4} more' if len(labels) > 4 else ''}: {msg}"
                 for msg, labels in groups.items()]
        super().__init__(f"{len(summary.failed)} unit(s) failed (error records: error.json in each unit directory "
                         f"under {summary.out}):\n" + "\n".join(lines) + "\nThe other units finished; their "
                         f"results are in {summary.out / 'results.csv'}. Run the same command again to retry the "
                         "failed units (finished ones are reused).")
