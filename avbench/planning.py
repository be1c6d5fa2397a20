"""Planning a run: protocol + models + corpus + profile -> a :class:`RunPlan` of units and tasks.

:func:`prepare` checks every option, opens the corpus and its splits and lists the units each
protocol needs; it trains nothing and writes nothing (a dry run, ``avbench plan`` and
``avbench run`` all start here).  What a planned unit's directory already holds is asked of its
:class:`~avbench.unitdir.UnitDir` (:meth:`RunPlan.states`), never decided here.  The only writers
are :func:`write_plan` (the record ``avbench status`` reads) and :func:`emit_commands`
(``avbench plan --emit``).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch

from avbench.atomic import atomic_path
from avbench.conditions import Condition, check_store
from avbench.devices import DEVICES
from avbench.models import create_model, get_model_meta
from avbench.models.base import check_config
from avbench.pretrained import PRETRAINED, RELEASED, GivenWeights, parse_weights, read_weights
from avbench.profiles import Profile, get_profile
from avbench.protocol import (DEFAULT_VARIANT, Protocol, check_model_options, members, models_of, resolve,
                              with_options)
from avbench.results import UnitKey, canonical_config, corpus_id, read_json, shift_suffix, write_json
from avbench.devices import autocast, resolve_device
from avbench.unitdir import DirState, UnitDir, file_lock, spec_name
from avbench.units import UnitTask, inapplicable, unit_semantics
from avbench.validation import ValidationError, check_int, check_path_component


def plan(protocol: Protocol, models: list[str] | None, *, corpus: str, profile: Profile, seeds: int,
         options: dict[str, Any] | None = None, given: Mapping[str, GivenWeights] | None = None
         ) -> list[tuple[UnitKey, tuple[Condition, ...]]]:
    """The units a protocol needs and the conditions each is scored under.

    A variant that leaves the model as it is (``ModelMeta.is_default``, e.g. ``pos_enc=true``) is
    planned as the default unit (trained once, shared) labelled with the variant's name.  A model
    with ``given`` weights is planned as one unit per trial instead of its variants and regimes
    (:func:`given_units`): the weights fix the model, and nothing here trains it.
    """
    work: list[tuple[UnitKey, tuple[Condition, ...]]] = []
    given = given or {}
    model_set = list(models or protocol.models)
    shift = protocol.train_shift_ms
    suffix = shift_suffix(shift)
    for name in model_set:
        if name in given:
            work += given_units(given[name], protocol.conditions, corpus=corpus, profile=profile, seeds=seeds)
            continue
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
        if name in given:
            work += given_units(given[name], protocol.needs_conditions or protocol.conditions, corpus=corpus,
                                profile=profile, seeds=seeds)
            continue
        meta = get_model_meta(name)
        config = profile.model_config(meta)
        for regime in protocol.needs_regimes or protocol.regimes:
            for seed in range(seeds):
                work.append((UnitKey(corpus, profile.key, name, DEFAULT_VARIANT.name, config, regime, seed,
                                     semantics=unit_semantics(name), is_default=True),
                             protocol.needs_conditions or protocol.conditions))
    return work


def given_units(given: GivenWeights, conditions: tuple[Condition, ...], *, corpus: str, profile: Profile,
                seeds: int) -> list[tuple[UnitKey, tuple[Condition, ...]]]:
    """One unit per trial for weights given to ``avbench run --weights``: regime ``pretrained`` and
    variant ``weights-<sha256[:12]>``, so that they are never taken for trained units and other
    weights never reuse their scores.  The weights do not depend on the trial, but its split decides
    the test clips, so each trial still has its unit."""
    meta = get_model_meta(given.model)
    default = meta.is_default(given.config, profile.model_config(meta))
    return [(UnitKey(corpus, profile.key, given.model, given.variant, given.config, PRETRAINED, seed,
                     semantics=unit_semantics(given.model), is_default=default), conditions)
            for seed in range(seeds)]


def read_given(weights: Mapping[str, str] | Iterable[str] | None, run_models: Iterable[str], store,
               profile: Profile, options: dict[str, Any] | None) -> dict[str, GivenWeights]:
    """``--weights`` read and checked against the run's models and the store (nothing written)."""
    items = [f"{k}={v}" for k, v in weights.items()] if isinstance(weights, Mapping) else list(weights or ())
    paths = parse_weights(items, run_models)
    out = {}
    for name, path in paths.items():
        base = with_options(Protocol("_", variants=(DEFAULT_VARIANT,)), options, name)[0]
        config = {**profile.model_config(get_model_meta(name)), **base.config}
        out[name] = read_weights(name, path, store, config)
    return out


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


@dataclass
class RunPlan:
    """A run resolved and planned: corpus, splits, profile and run directory, the protocols it
    serves, each unit with the union of its conditions, and how workers run them."""

    store: Any                 # FeatureStore, or a PlannedCorpus a dry run plans without generating it
    splits: list               # the trials' Split objects (empty for a corpus not generated yet)
    splits_id: str
    profile: Profile
    out: Path
    protocols: list[Protocol]
    work: list[tuple[Protocol, UnitKey, tuple[Condition, ...]]]
    units: dict[UnitKey, list[Condition]]
    n_seeds: int
    threads: int
    device: str  # what each worker resolves (the resolved device here; the request for elsewhere)
    notes: list[str] = field(default_factory=list)  # what the dry run says besides units (corpus to generate)
    runs_here: bool = True  # the device was resolved here (the local executor)
    given: dict[str, GivenWeights] = field(default_factory=dict)  # --weights, by model

    @property
    def store_id(self) -> str:
        return corpus_id(self.store.name, self.store.checksum, self.splits_id)

    def unit_dir(self, unit: UnitKey) -> UnitDir:
        return UnitDir(self.out, unit)

    def states(self) -> dict[UnitKey, DirState]:
        """Each unit's :meth:`UnitDir.state` for its conditions: the one answer everyone reads."""
        return {u: self.unit_dir(u).state([c.key for c in cs]) for u, cs in self.units.items()}

    def tasks(self, units=None, epoch_lines: bool = False, bars: bool = False) -> list[UnitTask]:
        """One self-contained task per unit (all, or ``units``), in plan order."""
        corpus, out = str(Path(self.store.path).resolve()), str(Path(self.out).resolve())
        return [UnitTask(corpus, self.splits[u.seed].to_json(), self.splits_id, self.profile.to_dict(), out,
                         self.device, self.threads, u, tuple((c.kind, c.modality, c.level) for c in cs),
                         epoch_lines, bars, self._weights(u))
                for u, cs in self.units.items() if units is None or u in units]

    def _weights(self, unit: UnitKey) -> dict[str, Any] | None:
        """What a unit's task carries of its given weights (None: a unit to train)."""
        return self.given[unit.model].to_json() if unit.regime == PRETRAINED else None


def prepare(protocol: str | Protocol, models: list[str] | None = None, *, corpus: str | Path = "synthetic",
            profile: str | Profile = "quick", seeds: int | None = None, out: str | Path = "runs/avbench",
            device: str = "auto", options: dict[str, Any] | None = None, splits: str | None = None,
            threads: int | None = None, dry_run: bool = False, runs_here: bool = True,
            echo: Callable[[str], None] = print,
            weights: Mapping[str, str] | Iterable[str] | None = None) -> RunPlan:
    """Checks every option, opens corpus and splits and plans the units of a run (the arguments of
    :func:`avbench.runner.run`); trains nothing and writes nothing but what checking the corpus
    records (not even that on a dry run).

    Args:
        runs_here: The units run on this machine (the local executor): the device is resolved
            here.  Otherwise (a cluster, ``plan --emit``) each worker resolves the request.
        threads: Torch threads per unit; default 1 on every executor (the same predictions
            whichever runs the unit).
        weights: Given weights, ``{model: path}`` or ``MODEL=PATH`` items (``--weights``): those
            models are scored with them, untrained (:mod:`avbench.pretrained`).
    """
    from avbench.data import load_splits, open_corpus  # deferred: keeps `avbench models` fast
    from avbench.data.integrity import ensure_verified

    prof = get_profile(profile)
    n_seeds = prof.seeds if seeds is None else seeds
    if not isinstance(n_seeds, int) or isinstance(n_seeds, bool) or n_seeds < 1:
        raise ValidationError(f"The 'seeds' parameter of avbench run must be a positive integer. Got {seeds!r} instead.")
    proto = resolve(protocol)
    for name in models or []:
        get_model_meta(name)  # unknown names fail before any work
    check_model_options(options, proto, models)
    threads = check_int(1 if threads is None else threads, "threads", "avbench run", minimum=1)
    if runs_here:
        dev = resolve_device(device)
        autocast(dev, prof.precision)  # a precision the device cannot use is refused before any work
        request = str(dev)
    else:  # resolved by each worker, which may have a GPU the planning machine lacks
        from avbench.validation import check_choice

        check_choice(device, "device", "avbench run", DEVICES)
        request = device
        if device == "cpu":
            autocast(torch.device("cpu"), prof.precision)  # refused here as on a local run, not by every worker
    notes: list[str] = []
    if dry_run and str(corpus) == "synthetic":
        from avbench.data.synthetic import PlannedCorpus, planned_synthetic

        store = planned_synthetic()
        if isinstance(store, PlannedCorpus):
            notes.append(f"corpus will be generated: {store.name} at {store.path} (first use)")
    else:
        store = open_corpus(corpus)
    protocols = members(proto)
    given = read_given(weights, {m for p in protocols for m in [*models_of(proto, p, models), *p.needs]}, store,
                       prof, options)
    if any(g.format == RELEASED for g in given.values()) and tuple(prof.frame_pool) != (1, 1):
        echo(f"Note: profile {prof.name!r} averages every {prof.frame_pool[0]} audio and {prof.frame_pool[1]} "
             "visual frames before the model; the released code fed its head every frame (--profile paper does).")
    if not dry_run:
        full = ensure_verified(store)  # never train on bytes other than those store.json describes
        echo(f"Corpus {store.name} checked: {len(store)} clips, "
             + ("every file hashed and every value finite." if full else "unchanged since its last full check."))
    splits_id, trial_splits = "", []
    if splits is None:
        if not notes:
            trial_splits = load_splits(store, n_seeds, write=not dry_run)
    else:
        from avbench.data.published_splits import load_named_splits

        trial_splits, splits_id = load_named_splits(store, splits)
        n_seeds = len(trial_splits) if seeds is None else n_seeds
        if n_seeds > len(trial_splits):
            raise ValidationError(f"The 'seeds' parameter of avbench run must be at most {len(trial_splits)}, the "
                                  f"number of trials in the partitions {splits!r}. Got {seeds!r} instead.")
        trial_splits = trial_splits[:n_seeds]
    cid = corpus_id(store.name, store.checksum, splits_id)
    work = [(p, u, cs) for p in protocols
            for u, cs in plan(p, models_of(proto, p, models),
                              corpus=cid, profile=prof, seeds=n_seeds, options=options, given=given)]
    # one unit may serve several protocols: train once, score the union of their conditions
    by_unit: dict[UnitKey, list[Condition]] = {}
    for _, u, cs in work:
        by_unit.setdefault(u, [])
        by_unit[u] += [c for c in cs if c not in by_unit[u]]
    check_buildable(by_unit, store)
    check_store((c for cs in by_unit.values() for c in cs), store)
    # after the checks of the request itself: warns of thin partitions, refuses untrainable ones
    from avbench.data.splits import audit_splits

    trial_splits = audit_splits(trial_splits, store, echo)
    return RunPlan(store, trial_splits, splits_id, prof, Path(out), protocols, work, by_unit, n_seeds, threads,
                   request, notes, runs_here, given)


@dataclass
class DryRun:
    """What a run would do: a line per unit to train (or resume) and per unit to reuse, and the
    (model, condition) pairs that do not apply."""

    to_train: list[str] = field(default_factory=list)
    to_reuse: list[str] = field(default_factory=list)
    not_applicable: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def dry_run(plan_: RunPlan) -> DryRun:
    """Each unit to train (or resume) or to reuse (trained, of the same semantics), with the
    conditions still to score, from its directory's state."""
    result = DryRun(notes=list(plan_.notes))
    for unit, state in plan_.states().items():
        conditions = plan_.units[unit]
        line = f"{unit.title}: {len(state.todo)} of {len(conditions)} condition(s) to score"
        if state.trained:
            result.to_reuse.append(line)
        else:
            extra = "" if state.name == "fresh" else f" ({state.describe(len(conditions))})"
            result.to_train.append(line + extra)
        result.not_applicable += [f"{unit.model} / {c.name}: {why}" for c in dict.fromkeys(conditions)
                                  if unit.seed == 0 and (why := inapplicable(unit.model, c))]
    result.not_applicable = list(dict.fromkeys(result.not_applicable))
    return result


def resume_message(plan_: RunPlan, states: dict[UnitKey, DirState]) -> str:
    """What a run picks up of earlier work in its directory ('' when nothing): how many of its
    units are trained and how many resume mid-training."""
    done = sum(s.trained for s in states.values())
    partial = sum(s.name == "resumable" or (s.name == "failed" and s.epoch is not None) for s in states.values())
    if not (done or partial):
        return ""
    return (f"Resuming in {plan_.out}: {done} of {len(states)} units already trained"
            + (f", {partial} resumed from their last finished epoch" if partial else "") + ".")


def write_plan(plan_: RunPlan) -> None:
    """Records the planned units under ``OUT/plans/`` (merged with earlier invocations'), so that
    ``avbench status`` can tell pending units from finished ones without the command line."""
    path = plan_.out / "plans" / f"{plan_.protocols[0].name}@{plan_.store_id}.json"
    units = {str(u.path): {"unit": u.to_json(), "label": u.label, "conditions": [c.key for c in cs]}
             for u, cs in plan_.units.items()}
    with file_lock(plan_.out / "locks" / "plans.lock"):  # another run may be merging into it too
        if path.exists():
            units = read_json(path)["units"] | units
        write_json(path, {"schema_version": 1, "units": units})


def emit_commands(plan_: RunPlan, path: Path) -> int:
    """Writes a spec (``OUT/specs/*.json``) per unit still to train or score and ``path`` with one
    ``avbench run-unit SPEC`` line each; returns how many.  Records the plan for ``avbench status``."""
    write_plan(plan_)
    pending = {u for u, s in plan_.states().items() if not s.finished}
    lines = []
    for task in plan_.tasks(pending):
        spec = (plan_.out / "specs" / spec_name(task.unit)).resolve()
        write_json(spec, task.to_json())
        lines.append(f"avbench run-unit {shlex.quote(str(spec))}\n")
    with atomic_path(Path(path)) as tmp:
        tmp.write_text("".join(lines))
    return len(lines)
