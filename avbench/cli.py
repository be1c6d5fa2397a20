"""The ``avbench`` command line: a thin click wrapper, each command one library call."""

from __future__ import annotations

import functools
import json
import logging
import signal
import sys
import threading
from pathlib import Path

import click
import yaml

from avbench.devices import DEVICES
from avbench.profiles import BATCHINGS, MEMORY_MODES, PRECISIONS, PROFILES
from avbench.registry import MODELS, PROTOCOLS, RegistryError
from avbench.validation import DataError, ValidationError

# What the user can fix: a bad option or name, a registry entry (a plugin), a missing optional
# dependency.  Any other exception is a bug in avbench or a plugin and keeps its traceback.
USER_ERRORS = (ValidationError, RegistryError, ImportError)
PROFILE_HELP = "Model size, schedule and trials (README, 'Profiles'): " + ", ".join(PROFILES) + "."
DEVICE_HELP = "auto: CUDA when torch sees a GPU, else the CPU."
RESUME_HINT = "Everything finished so far is kept; run the same command again to resume."
# library parameter -> the option that sets it, where the two names differ
OPTION_NAMES = {"n_speakers": "speakers", "n_splits": "seeds", "set": "sets"}
# Trials a run takes without --yes: ten times the paper's 20.  A mistyped --seeds 100000 would
# otherwise draw splits and plan units by the hundred thousand before saying a word.
MAX_SEEDS = 200


def user_errors(fn):
    """Turns bad input into a one-line message and an exit status, never a traceback.

    Exit status 2: a bad option or name (a usage error, restated under the option the user
    typed); 1: bad data, a missing path or a location avbench cannot write; 130: interrupted.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception:
            ctx = click.get_current_context(silent=True)
            if ctx is not None and (ctx.find_root().params or {}).get("debug"):
                raise  # avbench --debug: the full traceback, for a bug report
            _user_error(sys.exc_info()[1])
        except KeyboardInterrupt:
            resumable = fn.__name__ in ("run", "reproduce")
            click.echo(f"\nInterrupted. {RESUME_HINT if resumable else 'Nothing half-written was left behind.'}",
                       err=True)
            raise click.exceptions.Exit(130) from None

    return wrapper


def _user_error(exc: Exception) -> None:
    """Raises the click error that prints ``exc`` as one line, or ``exc`` itself when it is not the
    user's to fix (a bug: its traceback is what a report needs)."""
    if isinstance(exc, click.ClickException):
        raise exc
    if isinstance(exc, DataError):
        raise click.ClickException(str(exc)) from None
    if isinstance(exc, OSError):
        raise click.ClickException(_os_message(exc)) from None
    if isinstance(exc, USER_ERRORS):
        raise click.UsageError(_option_message(exc)) from None
    raise exc


def _os_message(exc: OSError) -> str:
    """``PATH: not found.`` / ``PATH: permission denied ...``: the path first, then what to do."""
    if exc.filename is None:
        return str(exc)
    path = exc.filename
    if isinstance(exc, FileNotFoundError):
        return f"{path}: not found."
    if isinstance(exc, PermissionError):
        return (f"{path}: permission denied; avbench cannot write or read there. Choose a writable location "
                "(--out, or AVBENCH_HOME for the corpus cache) or change the permissions.")
    return f"{path}: {exc.strerror or exc}."


def _option_message(exc: Exception) -> str:
    """Restates a parameter error under the command-line option the user typed, if there is one."""
    param = getattr(exc, "param", None)
    ctx = click.get_current_context(silent=True)
    if param is None or ctx is None:
        return str(exc)
    name = OPTION_NAMES.get(param, param)
    prefix = f"The {param!r} parameter of {exc.owner}"
    for p in ctx.command.params:
        if p.name == name and isinstance(p, click.Option) and str(exc).startswith(prefix):
            return f"The {p.opts[0]!r} option" + str(exc)[len(prefix):]
    return str(exc)


def check_run_size(protocols: list, models: list[str] | None, seeds: int | None, profile, options: dict,
                   yes: bool) -> None:
    """Refuses more than :data:`MAX_SEEDS` trials unless ``yes``, saying how many units they would plan.

    Args:
        protocols: What each run of the command is asked for (:func:`avbench.protocol.resolve`).
        models, options: ``--model`` and ``--set``.
        seeds: ``--seeds`` (None: the profile's, which is never that large).
        profile: The :class:`avbench.profiles.Profile`.
        yes: ``--yes`` was given.
    """
    if seeds is None or seeds <= MAX_SEEDS or yes:
        return
    from avbench.protocol import members, models_of, resolve
    from avbench.planning import plan as plan_units

    per_trial = {u for spec in protocols for top in [resolve(spec)] for p in members(top)
                 for u, _ in plan_units(p, models_of(top, p, models), corpus="", profile=profile, seeds=1,
                                        options=options)}
    raise ValidationError(f"The 'seeds' parameter of avbench run asks for {seeds} trials: {seeds * len(per_trial):,} "
                          f"units would be planned ({len(per_trial)} per trial). More than {MAX_SEEDS} trials are "
                          "run only with --yes.", param="seeds", owner="avbench run")


def parse_sets(values: tuple[str, ...]) -> dict:
    """``key=value`` and ``model.key=value`` pairs; values are parsed as YAML (numbers, booleans, lists)."""
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"The '--set' option must look like key=value or model.key=value (e.g. pos_enc=false). Got {item!r} instead.")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            problem = str(exc).splitlines()[0]
            raise ValidationError(f"The '--set' option {item!r} has a value that is not valid YAML ({problem}); "
                                  "write numbers, true/false, or lists such as [0.5, 0.25, 0.25].") from None
    return out


@click.group()
@click.version_option(package_name="avbench")
@click.option("--debug", is_flag=True, help="Show the full traceback of any error (for bug reports).")
def main(debug: bool) -> None:
    """Benchmark audiovisual emotion recognition and its robustness to missing modalities."""
    if threading.current_thread() is threading.main_thread():  # Ctrl-C works even if started with SIGINT ignored
        signal.signal(signal.SIGINT, signal.default_int_handler)
    log = logging.getLogger("avbench")  # the library's notes (e.g. generating a corpus on first use)
    if not log.handlers:
        handler = logging.StreamHandler()  # stderr
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


PROPOSED_HELP = ("The model every testing table and figure treats as yours (its label alone says '(ours)'); repeat "
                 "for several (each testing artifact is then built once per model).  [default: the single model of "
                 "the run declared proposed other than AuxFormer, else AuxFormer]")


def _plan_options(fn):
    """The options that say which units a run has: shared by ``run`` and ``plan``."""
    for option in reversed((
        click.option("--protocol", "-p", "protocol", required=True, multiple=True,
                     help="Protocol name (avbench protocols list) or a YAML file; repeat for several, run as one "
                          "(their union, as 'group:': each unit trained once, --model applies to each)."),
        click.option("--model", "-m", "models", multiple=True, help="Model name; repeat for several. Default: the protocol's."),
        click.option("--corpus", default="synthetic", show_default=True, help="Registered corpus or feature-store path."),
        click.option("--profile", default="quick", show_default=True, type=click.Choice(list(PROFILES)), help=PROFILE_HELP),
        click.option("--seeds", type=click.IntRange(min=1), default=None,
                     help=f"Number of trials (splits). Default: the profile's. More than {MAX_SEEDS} need --yes."),
        click.option("--yes", is_flag=True, help=f"Confirm a run of more than {MAX_SEEDS} trials."),
        click.option("--out", default="runs/avbench", show_default=True, type=click.Path(file_okay=False),
                     help="Run directory; rerunning with the same one resumes and reuses finished work."),
        click.option("--device", default="auto", show_default=True, type=click.Choice(DEVICES), help=DEVICE_HELP),
        click.option("--set", "sets", multiple=True, metavar="[MODEL.]KEY=VALUE",
                     help="Model option for every model (heads=2) or for one (auxformer.pos_enc=false, which wins "
                          "over heads=2 for that model); repeat for several."),
        click.option("--splits", default=None, metavar="NAME",
                     help="Partitions registered with 'avbench data splits import' (e.g. the authors' own) instead of "
                          "the store's drawn splits; --seeds defaults to all of their trials."),
        click.option("--threads", default=None, type=click.IntRange(min=1),
                     help="Torch threads per unit.  [default: 1, on every executor; more for one large unit] "
                          "Predictions are bitwise reproducible for the same seed and threads, on every executor."),
        click.option("--batching", default="random", show_default=True, type=click.Choice(BATCHINGS),
                     help="random: the paper's random batches; bucket: clips of similar length batched together, in "
                          "an order shuffled by the seed (less padding, faster; a departure from the paper)."),
        click.option("--precision", default="fp32", show_default=True, type=click.Choice(PRECISIONS),
                     help="bf16/fp16: autocast on CUDA (fp16 with gradient scaling); CPUs train in fp32 only."),
        click.option("--memory", default="fast", show_default=True, type=click.Choice(MEMORY_MODES),
                     help="lean: attention layers recomputed in the backward pass; much less memory, more time, "
                          "same results."),
    )):
        fn = option(fn)
    return fn


def _builtin_executor_options():
    """The options the built-in executors declare (their modules are light: the engines are
    imported only when a run uses them); a plugin's options go through --executor-option."""
    from avbench.executors import BUILTIN, get_executor

    seen: dict[str, tuple] = {}
    for name in BUILTIN:
        for o in get_executor(name).options:
            seen.setdefault(o.name, (o, []))[1].append(name)
    return seen


def _click_type(o):
    if o.type is int:
        return click.IntRange(min=o.minimum)
    if o.type is float:
        return click.FloatRange(min=o.minimum)
    return click.STRING


def _executor_options(fn):
    """Where units run (README, 'Running on a cluster'): shared by ``run`` and ``reproduce``.  The
    engine flags are those the executors declare (:class:`avbench.executors.ExecutorOption`)."""
    options = [
        click.option("--executor", default="local", show_default=True, metavar="NAME",
                     help="local: this machine; dask: a dask.distributed cluster (--scheduler); ray: a Ray cluster "
                          "(--address); slurm: a submitit job array (--partition, --gpus, --time, "
                          "--array-parallelism); or an executor plugin's name."),
        click.option("--executor-option", "executor_option", multiple=True, metavar="KEY=VALUE",
                     help="An option of an executor plugin (as it declares it)."),
    ]
    for o, owners in _builtin_executor_options().values():
        help_ = o.help if o.help.startswith(tuple(f"{n}:" for n in owners)) or owners == ["local"] \
            else f"{'/'.join(owners)}: {o.help}"
        options.append(click.option(o.flag, o.name, default=o.default, type=_click_type(o), metavar=o.metavar,
                                    show_default=o.default is not None, hidden=o.hidden, help=help_))
    for option in reversed(options):
        fn = option(fn)
    return fn


def executor_kwargs(executor: str, executor_option: tuple[str, ...], engine: dict) -> dict:
    """The ``executor_options`` of :func:`avbench.runner.run`: the engine flags given on the command
    line (told from defaults by click's parameter source, so a flag given at its default value is
    still a flag given) and each ``--executor-option``.  The runner refuses any the executor
    ``executor`` does not declare, before any work."""
    from click.core import ParameterSource

    from avbench.executors import get_executor

    ctx = click.get_current_context()
    cls = get_executor(executor)
    own = {o.name for o in cls.options}
    declared = _builtin_executor_options()
    defaults = (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)
    for key in engine:
        if ctx.get_parameter_source(key) in defaults or key in own:
            continue
        flag, owners = declared[key][0].flag, declared[key][1]
        raise click.UsageError(f"The {flag!r} option applies to --executor {' / '.join(owners)} only. "
                               f"Got --executor {executor}.")
    options = {o.name: engine[o.name] for o in cls.options if o.name in engine}
    for item in executor_option:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.UsageError(f"The '--executor-option' option must look like KEY=VALUE. Got {item!r} instead.")
        options[key.strip()] = yaml.safe_load(value)
    return options


@main.command(short_help="Train, select on dev, and score on test under a protocol's conditions.")
@_plan_options
@_executor_options
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--dry-run", is_flag=True, help="Print the units it would train, reuse, and not apply; run nothing.")
@click.option("--proposed", "proposed", multiple=True, metavar="MODEL", help=PROPOSED_HELP)
@user_errors
def run(protocol, models, corpus, profile, seeds, yes, out, device, sets, splits, threads, batching, precision,
        memory, executor, executor_option, quiet, dry_run, proposed, **engine):
    """Train, select on dev, and score on test under a protocol's conditions."""
    from avbench.profiles import get_profile
    from avbench.runner import run as run_protocol
    from avbench.results import summary_table

    profile = get_profile(profile).replace(batching=batching, precision=precision, memory=memory)
    check_run_size([list(protocol)], list(models) or None, seeds, profile, parse_sets(sets), yes)
    _check_proposed(proposed, models)
    summary = run_protocol(list(protocol), list(models) or None, corpus=corpus, profile=profile, seeds=seeds, out=out,
                           device=device, options=parse_sets(sets), progress=not quiet,
                           echo=lambda s: click.echo(s, err=True), splits=splits, threads=threads,
                           dry_run=dry_run, executor=executor,
                           executor_options=executor_kwargs(executor, executor_option, engine))
    if dry_run:
        _print_plan(summary)
        return
    if proposed:
        _record_proposed(summary.out, proposed, summary.table["model"])
    corpus_note = ""
    if not summary.table.empty and "synthetic" in str(summary.table["corpus"].iloc[0]):
        corpus_note = " (SYNTHETIC corpus: numbers test the tool, not emotion recognition)"
    click.echo(f"\nResults{corpus_note}: {summary.out / 'results.csv'}")
    with _wide_pandas():
        click.echo(summary_table(summary.table).round(3).to_string())
    for line in summary.not_applicable:
        click.echo(f"not applicable: {line}")
    if summary.profile_note:
        click.echo(summary.profile_note)
    click.echo(f"\nunits trained now: {summary.trained}, reused: {summary.reused}" + (
        f"; recorded training time of the units trained now {summary.train_seconds:.1f} s, their evaluation "
        f"(all conditions) {summary.eval_seconds:.1f} s = {100 * summary.eval_seconds / summary.train_seconds:.1f}% "
        f"of training" if summary.train_seconds else ""))


def _check_proposed(proposed, models) -> None:
    """``--proposed`` before anything runs: each name a registered model, and one of ``--model`` when given."""
    from avbench.proposed import check_proposed
    from avbench.registry import MODELS

    for name in proposed:
        MODELS.get(name)  # an unknown name: "Did you mean ...?"
    if proposed and models:
        check_proposed(proposed, models, "avbench run")


def _record_proposed(out, proposed, models=()) -> None:
    """After the run: the choice, each a model the run directory now holds scores of (this run's ``models``
    or earlier runs' results.csv), recorded there for ``avbench report``."""
    from avbench.proposed import check_proposed, record_choice
    from avbench.results import load_results

    models = set(map(str, models))
    if (Path(out) / "results.csv").exists():
        models |= set(load_results(Path(out))["model"].astype(str))
    check_proposed(proposed, models, "avbench run")
    record_choice(out, proposed)


def _print_plan(summary) -> None:
    for note in summary.notes:
        click.echo(note)
    if summary.profile_note:
        click.echo(summary.profile_note)
    for title, lines in (("to train", summary.to_train), ("to reuse", summary.to_reuse),
                         ("not applicable", summary.not_applicable)):
        click.echo(f"{len(lines)} {'unit(s) ' if title != 'not applicable' else ''}{title}:")
        click.echo("".join(f"  {line}\n" for line in lines), nl=False)


@main.command(short_help="The units a run needs; --emit writes one `avbench run-unit` command per pending unit.")
@_plan_options
@click.option("--emit", default=None, type=click.Path(dir_okay=False),
              help="Write one 'avbench run-unit SPEC' line per unit still to train or score, for any scheduler "
                   "(sbatch --array, GNU parallel); the specs go to OUT/specs/.")
@user_errors
def plan(protocol, models, corpus, profile, seeds, yes, out, device, sets, splits, threads, batching, precision,
         memory, emit):
    """Plan a run without training: print the units to train, to reuse and not applicable.

    With --emit FILE, also write each pending unit as a self-contained spec and FILE as one
    command line per unit.  Run the lines anywhere that sees OUT and the corpus (each runs
    exactly one unit and exits; failures leave error.json); then the same `avbench run`
    command reuses every unit and writes the results table.
    """
    from avbench.planning import dry_run, emit_commands, prepare
    from avbench.profiles import get_profile
    from avbench.runner import profile_note

    profile = get_profile(profile).replace(batching=batching, precision=precision, memory=memory)
    check_run_size([list(protocol)], list(models) or None, seeds, profile, parse_sets(sets), yes)
    # runs_here=False: the emitted commands run wherever they are sent, and each resolves the device there
    planned = prepare(list(protocol), list(models) or None, corpus=corpus, profile=profile, seeds=seeds, out=out,
                      device=device, options=parse_sets(sets), splits=splits, threads=threads,
                      dry_run=emit is None, runs_here=False, echo=lambda s: click.echo(s, err=True))
    if emit is None:
        summary = dry_run(planned)
        summary.profile_note = profile_note(planned.profile)
        _print_plan(summary)
        return
    n = emit_commands(planned, Path(emit))
    click.echo(f"{n} unit(s) pending: {n} command(s) written to {emit} (specs in {planned.out / 'specs'}). "
               f"When they are done, run the same 'avbench run' command to write the results table.")


@main.command("run-unit", short_help="Run exactly one unit from a spec written by `avbench plan --emit`.")
@click.argument("spec", type=click.Path(dir_okay=False))
@user_errors
def run_unit(spec):
    """Train (or reuse) and score the one unit SPEC describes, then exit: 0 when it finished, 1 when
    it failed (its error record, error.json, is beside the unit; running the line again retries)."""
    from avbench.units import read_task
    from avbench.worker import execute

    # no store verification here: `plan --emit` verified it, as the submitting side of every executor does
    # (on NFS every node would otherwise rehash the whole store: its device numbers differ)
    task = read_task(spec)
    outcome = execute(task)
    if outcome.failed:
        raise click.ClickException(f"{task.label}: {outcome.error.summary} "
                                   f"(error record: {task.unit_dir / 'error.json'})")
    click.echo(f"{task.label}: {'trained' if outcome.trained else 'reused'}, {len(outcome.evals)} condition(s) scored")


@main.command(short_help="Units of a run directory: done, pending, running and failed, with wall times.")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@user_errors
def status(run_dir, as_json):
    """What RUN_DIR holds: each planned unit's state (done, pending, running, failed) and wall time."""
    from avbench.status import format_status, run_status

    states = run_status(Path(run_dir))
    if as_json:
        click.echo(json.dumps([s.to_json() for s in states], indent=1))
    else:
        click.echo(format_status(states))


def _wide_pandas():
    import pandas as pd

    return pd.option_context("display.width", 250, "display.max_columns", 100, "display.max_rows", 500)


@main.group()
def models() -> None:
    """List and inspect registered models."""


def _dims(fn):
    fn = click.option("--visual-dim", default=4096, show_default=True, type=click.IntRange(min=1))(fn)
    fn = click.option("--audio-dim", default=130, show_default=True, type=click.IntRange(min=1))(fn)
    return click.option("--classes", default=4, show_default=True, type=click.IntRange(min=2))(fn)


@models.command("list")
@_dims
@click.option("--profile", default="paper", show_default=True, type=click.Choice(list(PROFILES)), help=PROFILE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@user_errors
def models_list(classes, audio_dim, visual_dim, profile, as_json):
    """Names, modalities and parameter counts for the given dimensions."""
    from avbench.models import model_parameters
    from avbench.profiles import get_profile

    prof = get_profile(profile)
    rows = []
    for name, meta in MODELS.items():
        n, _ = model_parameters(name, num_classes=classes, audio_dim=audio_dim, visual_dim=visual_dim,
                                **prof.model_config(meta))
        rows.append({"name": name, "modalities": list(meta.modalities), "params": n,
                     "paper_params": meta.paper_params, "description": meta.description})
    broken = MODELS.broken()  # listed with their error; only a run naming one fails
    if as_json:
        click.echo(json.dumps(rows + [{"name": name, "error": error} for name, error in broken.items()], indent=1))
        return
    click.echo(f"{'model':<18} {'modalities':<13} {'params':>11} {'paper':>11}  description")
    for r in rows:
        paper = f"{r['paper_params']:,}" if r["paper_params"] else "-"
        click.echo(f"{r['name']:<18} {'+'.join(r['modalities']):<13} {r['params']:>11,} {paper:>11}  {r['description']}")
    for name, error in broken.items():
        click.echo(f"{name:<18} {'?':<13} {'-':>11} {'-':>11}  BROKEN: {error}")
    click.echo(f"\n(counts at {classes} classes, audio {audio_dim}, visual {visual_dim}, profile {profile}; "
               "the paper's Table 5 is at 4 / 130 / 4096)")


@models.command("show")
@click.argument("name")
@_dims
@click.option("--profile", default="paper", show_default=True, type=click.Choice(list(PROFILES)), help=PROFILE_HELP)
@user_errors
def models_show(name, classes, audio_dim, visual_dim, profile):
    """Metadata, options and a per-block parameter breakdown of one model."""
    from avbench.models import get_model_meta, model_parameters
    from avbench.profiles import get_profile

    meta = get_model_meta(name)
    config = get_profile(profile).model_config(meta)
    total, blocks = model_parameters(name, num_classes=classes, audio_dim=audio_dim, visual_dim=visual_dim, **config)
    click.echo(f"{name}: {meta.description}\nmodalities: {', '.join(meta.modalities)}\ncitation: {meta.citation}")
    rules = meta.constraints()
    click.echo("options (paper defaults: what each accepts):")
    for option, default in meta.options().items():
        accepts = "; ".join(map(str, rules.get(option, ()))) or "any value (the model declares no constraint)"
        click.echo(f"  {option} = {json.dumps(default, default=str)}: {accepts}")
    if config:
        click.echo(f"profile {profile} overrides: {json.dumps(config)}")
    click.echo(f"\nparameters at {classes} classes, audio {audio_dim}, visual {visual_dim}:")
    for block, n in blocks.items():
        click.echo(f"  {block:<16} {n:>11,}")
    click.echo(f"  {'total':<16} {total:>11,}" + (f"   (paper: {meta.paper_params:,})" if meta.paper_params else ""))
    click.echo(f"\nsemantics version: {meta.semantics_version}")
    if meta.notes:
        click.echo(meta.notes)


@main.group()
def protocols() -> None:
    """List and inspect protocols."""


@protocols.command("list", short_help="Every protocol: name, paper reference, what it does.")
@user_errors
def protocols_list():
    """Every protocol: name, paper reference, and what it does (its description, cut at a word)."""
    import textwrap

    from avbench.protocol import get_protocol

    for name in PROTOCOLS.names():
        p = get_protocol(name)
        what = " ".join(p.description.split())
        head = f"{name:<21} {p.reference:<29} "
        click.echo(textwrap.fill(what, width=max(len(head) + 40, 120), initial_indent=head,
                                 subsequent_indent=" " * len(head), max_lines=2, placeholder=" ..."))


@protocols.command("show")
@click.argument("name")
@user_errors
def protocols_show(name):
    """The protocol's full definition, then what it expands to."""
    from avbench.protocol import get_protocol, members

    p = get_protocol(name)
    click.echo(p.to_yaml())
    for q in members(p):
        models = ", ".join(q.models) + (f" (+ {', '.join(q.needs)} for reference)" if q.needs else "")
        click.echo(f"# {q.name}: models {models}; regimes {', '.join(q.regimes)}; "
                   f"{len(q.variants)} variant(s); {len(q.conditions)} test condition(s): "
                   f"{', '.join(c.key for c in q.conditions)}")


@main.group()
def data() -> None:
    """Create, import and inspect feature stores."""


@data.command("synth")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Where to write; default: the cache used by --corpus synthetic.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--speakers", default=91, show_default=True, type=click.IntRange(min=3))
@click.option("--clips-per-speaker", default=24, show_default=True, type=click.IntRange(min=1))
@click.option("--visual-dim", default=64, show_default=True, type=click.IntRange(min=1))
@user_errors
def data_synth(out, seed, speakers, clips_per_speaker, visual_dim):
    """Generate the built-in synthetic corpus (CREMA-D's shape, SYNTHETIC data)."""
    from avbench.data.synthetic import default_synthetic, default_synthetic_path, generate_synthetic

    params = dict(seed=seed, n_speakers=speakers, clips_per_speaker=clips_per_speaker, visual_dim=visual_dim)
    existed = (Path(out) if out else default_synthetic_path(**params)[0]) / "store.json"
    existed = existed.exists()
    store = generate_synthetic(Path(out), **params) if out else default_synthetic(**params)
    click.echo(f"synthetic corpus {'reused (generated before)' if existed else 'generated'}: {store.path} ({len(store)} clips, {len(set(store.speakers))} speakers, "
               f"audio {store.audio_dim}-d @ {store.audio_rate} fps, visual {store.visual_dim}-d @ {store.visual_rate} fps)")


@data.command("import")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.argument("features", type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False))
@click.option("--audio-rate", default=62.5, show_default=True, type=click.FloatRange(min=0, min_open=True), help="Audio frames per second.")
@click.option("--visual-rate", default=30.0, show_default=True, type=click.FloatRange(min=0, min_open=True), help="Visual frames per second.")
@click.option("--dtype", default="float16", show_default=True, type=click.Choice(["float16", "float32"]))
@user_errors
def data_import(manifest, features, out, audio_rate, visual_rate, dtype):
    """Build a feature store from MANIFEST (clip_id, speaker, label, ...) and per-clip
    FEATURES/<clip_id>.audio.npy and .visual.npy files."""
    from avbench.data.store import import_arrays

    store = import_arrays(Path(out), Path(manifest), Path(features), audio_rate=audio_rate,
                          visual_rate=visual_rate, dtype=dtype)
    click.echo(f"feature store: {store.path} ({len(store)} clips, labels {', '.join(store.label_names)})")


@data.command("info")
@click.argument("corpus")
@click.option("--verify", is_flag=True, help="Recompute checksums.")
@user_errors
def data_info(corpus, verify):
    """Summary and provenance of a feature store."""
    from avbench.data import open_corpus

    store = open_corpus(corpus)
    if verify:
        store.verify()
        click.echo("verified: every data file matches its sha256 in store.json and every feature value is finite.")
    m = store.manifest
    click.echo(f"{store.name} at {store.path}{'  [SYNTHETIC]' if store.synthetic else ''}\n"
               f"clips {len(store)}, speakers {m['speaker'].nunique()}, checksum {store.checksum}\n"
               f"audio {store.audio_dim}-d @ {store.audio_rate} fps, visual {store.visual_dim}-d @ {store.visual_rate} fps\n"
               f"labels: " + ", ".join(f"{k} {v}" for k, v in m["label"].value_counts().items()))
    click.echo("provenance: " + json.dumps(store.provenance, indent=1, default=str))


@data.group("crema-d")
def crema_d() -> None:
    """CREMA-D from its distribution: label tables and feature extraction."""


@crema_d.command("manifest")
@click.option("--summary-table", required=True, type=click.Path(dir_okay=False),
              help="processedResults/summaryTable.csv of the distribution.")
@click.option("--demographics", type=click.Path(dir_okay=False), default=None,
              help="VideoDemographics.csv (adds a gender column).")
@click.option("--label-source", default="multimodal", show_default=True,
              type=click.Choice(["multimodal", "voice", "face", "intended"]),
              help="Which vote is the label; the paper uses the audiovisual (multimodal) one.")
@click.option("--ties", default="random", show_default=True, type=click.Choice(["random", "intended", "first", "drop"]),
              help="What a tied vote (N:S) becomes; random (seeded, among the tied classes) keeps all 7,442 clips.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the tie break.")
@click.option("--root", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Corpus root the media paths (AudioWAV/, VideoFlash/) are relative to.")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@user_errors
def crema_d_manifest_cmd(summary_table, demographics, label_source, ties, seed, root, out):
    """Write one row per clip: id, actor, sentence, intended emotion and level, gender, label, media paths."""
    from avbench.atomic import atomic_path
    from avbench.data.crema_d import class_counts, crema_d_manifest

    df = crema_d_manifest(root, summary_table=summary_table, demographics=demographics, label_source=label_source,
                          ties=ties, seed=seed)
    with atomic_path(Path(out)) as tmp:
        df.to_csv(tmp, index=False)
    _print_counts(df, class_counts(df), f"{out}: {len(df)} clips, {df['speaker'].nunique()} actors "
                  f"(labels: {label_source} votes, ties: {ties})")


@data.group("msp-improv")
def msp_improv() -> None:
    """MSP-IMPROV from its distribution: label tables and feature extraction."""


@msp_improv.command("manifest")
@click.option("--labels", required=True, type=click.Path(dir_okay=False),
              help="CSV: clip_id,label (one row per clip) or clip_id,rater,label (one row per rating).")
@click.option("--root", type=click.Path(file_okay=False), default=None,
              help="Corpus root, searched for <clip_id>.wav and .avi; omit to write labels only.")
@click.option("--clip-column", default="clip_id", show_default=True)
@click.option("--label-column", default="label", show_default=True)
@click.option("--rater-column", default="rater", show_default=True,
              help="When the CSV has this column, labels are the plurality of its ratings.")
@click.option("--name-regex", default=None, help="File-name pattern with named groups speaker, session "
              "(and gender).  [default: MSP-IMPROV-S01A-F01-P-FM01 -> speaker F01, session 01, gender female]")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@user_errors
def msp_improv_manifest_cmd(labels, root, clip_column, label_column, rater_column, name_regex, out):
    """Write one row per clip with a plurality label among anger, happiness, sadness, neutral."""
    from avbench.atomic import atomic_path
    from avbench.data.msp_improv import NAME_REGEX, class_counts, msp_improv_manifest

    df, left_out = msp_improv_manifest(labels, root, clip_col=clip_column, label_col=label_column,
                                       rater_col=rater_column, name_regex=name_regex or NAME_REGEX)
    with atomic_path(Path(out)) as tmp:
        df.to_csv(tmp, index=False)
    _print_counts(df, class_counts(df), f"{out}: {len(df)} clips, {df['speaker'].nunique()} speakers, "
                  f"{df['session'].nunique()} sessions; left out: {left_out.get('tie', 0)} tied, "
                  f"{left_out.get('other', 0)} outside the four classes")
    if root is not None:
        for col in ("audio_path", "video_path"):
            n = int((df[col] == "").sum())
            if n:
                click.echo(f"warning: {n} clips have no {col.split('_')[0]} file under {root}")


def _print_counts(df, counts, title: str) -> None:
    click.echo(title)
    with _wide_pandas():
        click.echo(counts.to_string())
    if "gender" in df.columns:
        per = df.groupby("gender").agg(clips=("clip_id", "size"), speakers=("speaker", "nunique"))
        click.echo("per gender: " + ", ".join(f"{g} {r.clips} clips / {r.speakers} speakers"
                                             for g, r in per.iterrows()))


@data.group("splits")
def splits_group() -> None:
    """Partitions you supply (e.g. the authors' own), used with avbench run --splits NAME."""


@splits_group.command("import")
@click.argument("table", type=click.Path(dir_okay=False))
@click.option("--store", required=True, help="Feature-store path the partitions are for.")
@click.option("--name", required=True, help="Name to register them under (letters, digits, '.', '_', '-').")
@click.option("--clip-column", default="clip_id", show_default=True)
@click.option("--trial-column", default="trial", show_default=True)
@click.option("--partition-column", default="partition", show_default=True, help="Values: train, dev, test.")
@user_errors
def splits_import(table, store, name, clip_column, trial_column, partition_column):
    """Check TABLE (one row per clip and trial) and register it for STORE; it is written to the
    cache ($AVBENCH_HOME/splits), never into the store."""
    from avbench.data import open_corpus
    from avbench.data.published_splits import import_splits

    st = open_corpus(store)
    rec = import_splits(table, st, name, clip_col=clip_column, trial_col=trial_column, partition_col=partition_column)
    click.echo(f"partitions {name!r}: {rec['trials']} trials for {st.path} (hash {rec['hash'][:8]}), written to "
               f"{rec['path']}" + (f"; {rec['unknown_clips']} rows name clips the store lacks (ignored)"
                                   if rec["unknown_clips"] else ""))
    click.echo(f"use them with: avbench run --corpus {st.path} --splits {name} ...")


def _extraction_options(fn):
    """The options every prepare command shares: extractors, weights, device, parallelism."""
    opts = [
        click.option("--audio-extractor", default="compare", show_default=True,
                     help="Registered audio extractor (avbench.extractors); compare = 130 ComParE LLDs, 32/16 ms; "
                          "wav2vec2, hubert, wavlm = hidden states of the --audio-model checkpoint (50/s; [ssl] extra)."),
        click.option("--audio-model", type=click.Path(file_okay=False), default=None,
                     help="Local Hugging Face checkpoint folder (config.json, model.safetensors or pytorch_model.bin, "
                          "preprocessor_config.json) for wav2vec2/hubert/wavlm; never downloaded."),
        click.option("--audio-layer", default="last", show_default=True,
                     help="last (last_hidden_state), N (hidden state N; 0 = the transformer's input) or mean (of all)."),
        click.option("--audio-preset", type=click.Choice(["auxformer-release"]), default=None,
                     help="auxformer-release: the released AuxFormer code's audio model (wav2vec2-large-robust, "
                          "encoder layers 12+ deleted, last_hidden_state); implies --audio-extractor wav2vec2."),
        click.option("--audio-weights", type=click.Path(dir_okay=False), default=None,
                     help="With --audio-preset auxformer-release: a state dict of the pruned model (the release's "
                          "final_wav2vec.pt) loaded on top; every key must match."),
        click.option("--max-seconds", default=30.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
                     help="Longer clips run through the speech model in chunks of this length, frames concatenated."),
        click.option("--audio-from", type=click.Choice(["audio", "video"]), default="audio", show_default=True,
                     help="Read the audio from the manifest's audio_path, or from the video's own track (as the "
                          "released AuxFormer pre-processing does for CREMA-D's FLV files)."),
        click.option("--visual-embedder", default="vggface", show_default=True,
                     help="vggface (fc6 of VGG-Face, needs --vggface-weights), clip (CLIP vision encoder from "
                          "--visual-model; [ssl] extra), import (your own per-clip arrays from --visual-features, "
                          "e.g. EMOCA codes), pixels (grey 16x16 face crop, no weights, NOT the paper's feature) or "
                          "a plugin's name."),
        click.option("--visual-model", type=click.Path(file_okay=False), default=None,
                     help="Local CLIP checkpoint folder (config.json, weights, preprocessor_config.json) for "
                          "--visual-embedder clip."),
        click.option("--visual-layer", type=click.IntRange(min=0), default=None,
                     help="CLIP: the class token of hidden state N instead of pooler_output."),
        click.option("--visual-features", type=click.Path(file_okay=False), default=None,
                     help="--visual-embedder import: folder of <clip_id>.visual.npy (frames x dim) arrays."),
        click.option("--visual-rate", default=30.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
                     help="--visual-embedder import: frames per second of those arrays."),
        click.option("--pool", type=click.Choice(["none", "mean"]), default="none", show_default=True,
                     help="mean: one vector per clip (mean over frames) for utterance-level models; frame-level "
                          "conditions (masking, bursts, shifts) are then refused."),
        click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16"]), default="fp32", show_default=True,
                     help="Compute precision of the speech models and CLIP (fp16/bf16 on CUDA only; VGG-Face and "
                          "MTCNN stay fp32); --dtype is the storage type."),
        click.option("--save-crops", default=0, show_default=True, type=click.IntRange(min=0),
                     help="Write the first N face crops of each clip as PNGs under OUT.staging/<key>/crops/ "
                          "(kept after success) to see what the detector found."),
        click.option("--vggface-weights", type=click.Path(dir_okay=False), default=None,
                     help="VGG-Face state dict (vgg_face_dag or torchvision VGG-16 layout); never downloaded."),
        click.option("--vggface-normalisation", type=click.Choice(["vgg_face_dag", "imagenet", "unit"]), default=None,
                     help="Input scaling.  [default: follows the weights' layout: vgg_face_dag -> RGB 0-255 minus "
                          "its mean, torchvision -> imagenet; unit = [-1, 1], the paper's fine-tune]"),
        click.option("--fc6", type=click.Choice(["relu", "linear"]), default="relu", show_default=True,
                     help="Read fc6 after its ReLU or before it."),
        click.option("--face-detector", type=click.Choice(["haar", "mtcnn"]), default="haar", show_default=True,
                     help="haar: OpenCV's cascade, shipped in its wheel (not the paper's); mtcnn: the paper's, "
                          "needs --mtcnn-weights."),
        click.option("--mtcnn-weights", type=click.Path(), default=None,
                     help="The facenet-pytorch wheel file (.whl) or a folder with its pnet.pt, rnet.pt, onet.pt."),
        click.option("--pixels-side", default=16, show_default=True, type=int, help="Side of the pixels embedder's grid."),
        click.option("--extract-device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]),
                     help="Where the detector, embedder and speech models run (batched on cuda)."),
        click.option("--processes", default=1, show_default=True, type=click.IntRange(min=1),
                     help="Clips extracted at once (processes)."),
        # the old names meant something else here than in `avbench run` (units at once; auto device): kept as
        # deprecated aliases that still work
        click.option("--device", "old_device", default=None, hidden=True, type=click.Choice(["cpu", "cuda"])),
        click.option("--jobs", "old_jobs", default=None, hidden=True, type=click.IntRange(min=1)),
        click.option("--dtype", default="float32", show_default=True, type=click.Choice(["float16", "float32"])),
        click.option("--keep-staging", is_flag=True, help="Keep OUT.staging/ (per-clip results) after success."),
        click.option("--quiet", is_flag=True, help="No progress bar."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


#: data prepare's deprecated option names and the names that replaced them (the old ones meant another
#: thing in `avbench run`: --jobs counts units there, --device defaults to auto there).
PREPARE_ALIASES = {"old_device": ("--device", "extract_device", "--extract-device"),
                   "old_jobs": ("--jobs", "processes", "--processes")}


def _resolve_aliases(opts: dict) -> dict:
    """``opts`` with each deprecated name folded into its new one (a warning says so; both given and
    different is refused)."""
    ctx = click.get_current_context()
    for old, (old_flag, new, new_flag) in PREPARE_ALIASES.items():
        value = opts.pop(old, None)
        if value is None:
            continue
        if ctx.get_parameter_source(new) is not click.core.ParameterSource.DEFAULT and opts[new] != value:
            raise click.UsageError(f"{old_flag} {value} and {new_flag} {opts[new]} disagree; {old_flag} is a "
                                   f"deprecated name of {new_flag}: give {new_flag} alone.")
        click.echo(f"warning: {old_flag} of data prepare is deprecated (it means another thing in avbench run); "
                   f"use {new_flag}.", err=True)
        opts[new] = value
    return opts


def _settings(opts: dict, known_no_audio=()):
    from avbench.data.prepare import ExtractionSettings

    extractor = opts["audio_extractor"]
    source = click.get_current_context().get_parameter_source("audio_extractor")
    if opts["audio_preset"] and source is click.core.ParameterSource.DEFAULT:
        extractor = "wav2vec2"  # the preset is a wav2vec2 setting
    return ExtractionSettings(audio_extractor=extractor, visual_embedder=opts["visual_embedder"],
                              face_detector=opts["face_detector"], vggface_weights=opts["vggface_weights"],
                              vggface_normalisation=opts["vggface_normalisation"], fc6=opts["fc6"],
                              mtcnn_weights=opts["mtcnn_weights"], pixels_side=opts["pixels_side"],
                              device=opts["extract_device"], known_no_audio=tuple(known_no_audio),
                              audio_model=opts["audio_model"], audio_layer=opts["audio_layer"],
                              audio_preset=opts["audio_preset"], audio_weights=opts["audio_weights"],
                              max_seconds=opts["max_seconds"], audio_from=opts["audio_from"],
                              visual_model=opts["visual_model"], visual_layer=opts["visual_layer"],
                              visual_features=opts["visual_features"], visual_rate=opts["visual_rate"],
                              precision=opts["precision"], pool=opts["pool"], save_crops=opts["save_crops"])


def _prepare(manifest, root, out, opts, label_names=None, known_no_audio=(), provenance=None):
    from avbench.data.prepare import prepare, summary_lines

    opts = _resolve_aliases(dict(opts))
    summary = prepare(manifest, root, out, settings=_settings(opts, known_no_audio), label_names=label_names,
                      jobs=opts["processes"], dtype=opts["dtype"], keep_staging=opts["keep_staging"],
                      progress=not opts["quiet"], provenance=provenance)
    store = summary.store
    click.echo(f"feature store: {store.path} ({len(store)} clips, audio {store.audio_dim}-d @ {store.audio_rate:g}/s, "
               f"visual {store.visual_dim}-d @ {store.visual_rate:g}/s; {summary.seconds:.1f} s)")
    for line in summary_lines(summary):
        click.echo(line)
    click.echo(f"per-clip report: {store.path / 'prepare_report.csv'}; failures: {store.path / 'failed.csv'}")
    if opts["save_crops"]:
        click.echo(f"face crops (first {opts['save_crops']} per clip): {out}.staging/*/crops/<clip_id>/")
    if opts["visual_embedder"] == "pixels":
        click.echo("note: the pixels embedder is a pipeline check, NOT the paper's visual feature.")


@data.command("prepare")
@click.option("--manifest", required=True, type=click.Path(dir_okay=False),
              help="CSV: clip_id, speaker, label, audio_path, video_path (relative to --root) and optional columns.")
@click.option("--root", required=True, type=click.Path(file_okay=False), help="Folder the media paths are relative to.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The new feature store.")
@click.option("--label-names", default=None, help="Comma-separated class order.  [default: sorted labels]")
@_extraction_options
@user_errors
def data_prepare(manifest, root, out, label_names, **opts):
    """Extract features from raw media into a feature store (resumable: rerun after a kill)."""
    names = [n.strip() for n in label_names.split(",")] if label_names else None
    _prepare(Path(manifest), Path(root), Path(out), opts, label_names=names,
             provenance={"manifest": str(Path(manifest).resolve())})


@crema_d.command("prepare")
@click.option("--root", required=True, type=click.Path(file_okay=False),
              help="CREMA-D root: AudioWAV/, VideoFlash/, processedResults/summaryTable.csv, VideoDemographics.csv.")
@click.option("--out", required=True, type=click.Path(file_okay=False))
@click.option("--label-source", default="multimodal", show_default=True,
              type=click.Choice(["multimodal", "voice", "face", "intended"]))
@click.option("--ties", default="random", show_default=True, type=click.Choice(["random", "intended", "first", "drop"]))
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the tie break.")
@_extraction_options
@user_errors
def crema_d_prepare(root, out, label_source, ties, seed, **opts):
    """Labels from the summary table, audio from AudioWAV/, video from VideoFlash/, into one store."""
    from avbench.data.crema_d import LABELS, NO_AUDIO, class_counts, crema_d_manifest

    df = crema_d_manifest(root, label_source=label_source, ties=ties, seed=seed)
    _print_counts(df, class_counts(df), f"CREMA-D: {len(df)} clips, {df['speaker'].nunique()} actors "
                  f"(labels: {label_source} votes, ties: {ties}, seed {seed})")
    _prepare(df, Path(root), Path(out), opts, label_names=list(LABELS), known_no_audio=NO_AUDIO,
             provenance={"corpus": "CREMA-D", "labels": {"source": label_source, "ties": ties, "seed": seed}})


@msp_improv.command("prepare")
@click.option("--labels", required=True, type=click.Path(dir_okay=False),
              help="CSV: clip_id,label or clip_id,rater,label (see avbench data msp-improv manifest).")
@click.option("--root", required=True, type=click.Path(file_okay=False), help="MSP-IMPROV root (searched for media).")
@click.option("--out", required=True, type=click.Path(file_okay=False))
@click.option("--name-regex", default=None, help="File-name pattern with named groups speaker, session (and gender).")
@_extraction_options
@user_errors
def msp_improv_prepare(labels, root, out, name_regex, **opts):
    """Plurality labels, speakers from file names, media found under ROOT, into one store."""
    from avbench.data.msp_improv import CLASSES, NAME_REGEX, class_counts, msp_improv_manifest

    df, left_out = msp_improv_manifest(labels, root, name_regex=name_regex or NAME_REGEX)
    _print_counts(df, class_counts(df), f"MSP-IMPROV: {len(df)} clips, {df['speaker'].nunique()} speakers; left "
                  f"out: {left_out.get('tie', 0)} tied, {left_out.get('other', 0)} outside the four classes")
    _prepare(df, Path(root), Path(out), opts, label_names=list(CLASSES),
             provenance={"corpus": "MSP-IMPROV", "labels": str(Path(labels).resolve())})


# --------------------------------------------------------------------------- reports
REPORT_DEFAULT_CORRECTION = "holm"  # = avbench.report.DEFAULT_CORRECTION (kept here so --help stays fast)
DEFAULT_ROPE = DEFAULT_EFFECT = 0.01  # = avbench.stats.DEFAULT_ROPE and DEFAULT_EFFECT (likewise)


def _report_options(fn):
    fn = click.option("--proposed", "proposed", multiple=True, metavar="MODEL", help=PROPOSED_HELP)(fn)
    fn = click.option("--latex-bundle", is_flag=True, help="Also write paper/ in the report: every table's .tex, "
                      "every figure's PDF, and tables.tex / figures.tex to \\input in a paper.")(fn)
    fn = click.option("--interval", default="t", show_default=True, type=click.Choice(["t", "bootstrap"]),
                      help="Interval of the mean differences in stats.csv: the t-interval, or also a BCa bootstrap "
                           "interval (from 10 trials up).")(fn)
    fn = click.option("--effect", default=DEFAULT_EFFECT, show_default=True, type=float,
                      help="The difference (F1) stats.csv plans trials for: its trials_needed column and the power "
                           "line printed when most comparisons could not detect it.")(fn)
    fn = click.option("--rope", default=DEFAULT_ROPE, show_default=True, type=float,
                      help="Region of practical equivalence (F1) of the Bayesian comparisons: differences within "
                           "±ROPE count as equivalent.")(fn)
    fn = click.option("--no-html", is_flag=True, help="Write index.md only (no index.html).")(fn)
    fn = click.option("--test", "test_", default="t", show_default=True, type=click.Choice(["t", "wilcoxon"]),
                      help="Paired test behind '*': one-tailed paired t-test (the paper) or Wilcoxon signed-rank.")(fn)
    fn = click.option("--alpha", default=0.05, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True), help="Significance level (the paper: 0.05).")(fn)
    fn = click.option("--correction", default=REPORT_DEFAULT_CORRECTION, show_default=True, metavar="METHOD",
                      help="Multiple-comparison correction behind '*': holm (default; controls every single "
                           "comparison), none (the paper's choice; valid for the claim 'better than every "
                           "baseline', an intersection-union test), bonferroni, fdr_bh, ... (any statsmodels "
                           "multipletests method).")(fn)
    fn = click.option("--metric", default="micro_f1", show_default=True,
                      type=click.Choice(["micro_f1", "macro_f1", "accuracy"]),
                      help="Score the figures plot (tables always show micro- and macro-F1, as the paper's).")(fn)
    return fn


def _print_report(rep) -> None:
    """The report's summary; the failed artifacts (tracebacks with ``avbench --debug``) and the user's files
    kept where it would have written make a non-zero exit."""
    click.echo(f"report: {rep.index}" + ("  [SYNTHETIC corpus]" if rep.run.synthetic else ""))
    click.echo(f"  proposed: {', '.join(rep.proposed) or 'none'}")
    click.echo(f"  tables: {', '.join(t.number for t in rep.tables) or 'none'}")
    click.echo(f"  figures: {', '.join(f.number for f in rep.figures) or 'none'}")
    for s in rep.skipped:
        click.echo(f"  skipped {s.artifact}: {s.reason} (protocol: {s.protocol})")
    if rep.power_note:
        click.echo(f"  power: {rep.power_note} (see stats.csv; avbench power for more)")
    for path in rep.in_the_way:
        click.echo(f"  kept your file {path}: the report did not write its own there", err=True)
    ctx = click.get_current_context(silent=True)
    debug = ctx is not None and (ctx.find_root().params or {}).get("debug")
    for f in rep.failed:
        click.echo(f"  FAILED {f.artifact}: {f.reason}" + (f"\n{f.traceback}" if debug else ""), err=True)
    problems = []
    if rep.failed:
        problems.append(f"{len(rep.failed)} artifact(s) failed ({', '.join(f.key for f in rep.failed)}); the others "
                        f"were written. `avbench --debug report ...` shows the tracebacks.")
    if rep.in_the_way:
        problems.append(f"{len(rep.in_the_way)} file(s) of yours were kept where the report writes its own, so the "
                        f"report is incomplete (its index may be yours); write it into a new folder for the whole.")
    if problems:
        raise click.ClickException(" ".join(problems))


@main.command(short_help="Tables (LaTeX, Markdown) and figures (PNG, PDF) from a finished run.")
@click.argument("run_dir", type=click.Path())
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Report directory.  [default: RUN_DIR/report]")
@_report_options
@click.option("--force", is_flag=True, help="Write into a folder that holds files of yours and no avbench report: "
                                            "avbench keeps every file it did not write.")
@user_errors
def report(run_dir, out, metric, correction, alpha, test_, no_html, latex_bundle, proposed, rope, effect, interval,
           force):
    """Build paper-style tables (LaTeX + Markdown) and figures (PNG + PDF) from RUN_DIR.

    RUN_DIR is a run directory (avbench run --out), a report's data/ folder, or a results.csv.
    Nothing is retrained: whatever the run lacks is skipped and listed in index.md with the
    protocol that produces it.
    """
    from avbench.report import build_report

    _print_report(build_report(run_dir, out, metric=metric, correction=correction, alpha=alpha, test=test_,
                               html_page=not no_html, proposed=proposed, force=force, latex_bundle=latex_bundle,
                               rope=rope, effect=effect, interval=interval))


@main.command(short_help="How small a difference a run can detect, and how many trials a wanted one needs.")
@click.argument("run_dir", type=click.Path())
@click.option("--effect", default=DEFAULT_EFFECT, show_default=True, type=float, help="The difference (F1) to detect.")
@click.option("--alpha", default=0.05, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Level of each paired test (unadjusted).")
@click.option("--test", "test_", default="t", show_default=True, type=click.Choice(["t", "wilcoxon"]),
              help="The paired test the report uses (trials are planned by the t-test's numbers either way).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Also write every comparison as CSV.")
@click.option("--proposed", "proposed", multiple=True, metavar="MODEL",
              help="The model whose comparisons are planned (as avbench report --proposed).  [default: the run's]")
@user_errors
def power(run_dir, effect, alpha, test_, out, proposed):
    """From a pilot run, how many trials (seeds) a large run needs.

    For every paired comparison behind the report's '*' (the proposed model against each baseline in
    each cell), the minimum detectable difference at the run's number of trials (power 0.8, the
    test's alpha, one-tailed as the test is) and the trials a difference of --effect would need,
    from the observed sd of the paired differences.  Nothing is written unless --out is given.
    """
    from avbench.report.trials import plan_trials

    plan = plan_trials(run_dir, effect=effect, alpha=alpha, test=test_, proposed=proposed)
    click.echo(plan.text())
    if out:
        from avbench.results import write_table

        write_table(Path(out), plan.comparisons)
        click.echo(f"every comparison: {out}")


@main.command(short_help="Compare two runs unit by unit: paired tests, Holm, Bayesian with a ROPE.")
@click.argument("run_a", type=click.Path())
@click.argument("run_b", type=click.Path())
@click.option("--metric", "metrics", multiple=True, default=("micro_f1", "macro_f1"), show_default=True,
              help="Metric to compare (repeatable); the cells --fail-if-worse checks.")
@click.option("--rope", default=DEFAULT_ROPE, show_default=True, type=float,
              help="Region of practical equivalence of the Bayesian comparison.")
@click.option("--alpha", default=0.05, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Level of the Holm-corrected paired t-tests.")
@click.option("--pair-ignore", "pair_ignore", multiple=True, type=click.Choice(["variant"]),
              help="Pair units whose variant names differ (a --set renames the variant).")
@click.option("--fail-if-worse", "fail_if_worse", type=float, default=None, metavar="MARGIN",
              help="Exit 3 when run B is worse than A by more than MARGIN with probability above 0.95 in any "
                   "compared cell, naming those cells.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Also write the table: .csv (every column), .md or .tex.")
@user_errors
def compare(run_a, run_b, metrics, rope, alpha, pair_ignore, fail_if_worse, out):
    """Compare RUN_B with RUN_A (each a run directory, a report's data/ folder or a results.csv).

    Scores are paired by corpus, protocol, model, variant, regime, condition, level and seed; each
    cell is tested with a two-sided paired t-test (Holm over the cells of a metric) and the Bayesian
    posterior of the mean difference with a region of practical equivalence.  Exit status 3 (with
    --fail-if-worse): B is worse; 1: bad data; 2: a bad option or runs of different corpora or splits.
    """
    from avbench.runcompare import EXIT_WORSE, FAIL_PROBABILITY, compare_runs, write_comparison

    if out:
        from avbench.runcompare import OUT_FORMATS

        if Path(out).suffix.lower() not in OUT_FORMATS:
            raise click.BadParameter(f"must end in {', '.join(OUT_FORMATS)} (the format written); got {out!r}.",
                                     param_hint="'--out'")
    res = compare_runs(run_a, run_b, metrics=metrics, rope=rope, alpha=alpha, pair_ignore=pair_ignore,
                       fail_if_worse=fail_if_worse)
    _print_comparison(res)
    if out:
        click.echo(f"table: {write_comparison(res, out)}")
    if fail_if_worse is not None and not res.worse.empty:
        click.echo(f"FAIL: run B is worse than run A by more than {fail_if_worse:g} with probability above "
                   f"{FAIL_PROBABILITY:g} in {len(res.worse)} cell(s):", err=True)
        for _, r in res.worse.iterrows():
            variant = r["variant"] if "variant" in r else f"{r['variant_a']} → {r['variant_b']}"
            click.echo(f"  {r['corpus']} / {r['protocol']} / {r['model']} / {variant} / {r['regime']} / {r['condition']}"
                       f"{'' if r['level'] != r['level'] else f' {r.level:g}'} / {r['metric']}: B − A = "
                       f"{r['diff']:+.3f}, P(B − A < −{fail_if_worse:g}) = {r['p_b_worse_than_margin']:.3f}", err=True)
        raise click.exceptions.Exit(EXIT_WORSE)


def _print_comparison(res) -> None:
    cells = res.cells
    if cells.empty:
        click.echo("no cell is paired between the two runs")
    else:
        shown = cells.assign(level=cells["level"].map(lambda x: "" if x != x else f"{x:g}"))
        columns = [c for c in ("corpus", "protocol", "model", "variant", "variant_a", "variant_b", "regime",
                               "condition", "level", "metric", "n", "mean_a", "mean_b", "diff", "p_holm", "p_b_better",
                               "p_rope", "p_b_worse") if c in shown.columns]
        with _wide_pandas():
            click.echo(shown[columns].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        click.echo(f"{len(cells)} cell(s) compared; ROPE ±{res.rope:g}; p: two-sided paired t-test, Holm over the "
                   f"cells of each metric.")
    for line in res.untested:
        click.echo(f"not tested: {line}")
    if not res.unpaired.empty:
        click.echo(f"{len(res.unpaired)} unit(s) have scores without a partner in the other run:")
        for _, u in res.unpaired.iterrows():
            click.echo(f"  only in {u['run']}: {u['corpus']} / {u['protocol']} / {u['model']} / {u['variant']} / "
                       f"{u['regime']} / seed {u['seed']} ({u['scores']} score(s): {u['conditions']})")


#: What ``reproduce --proposed MODEL`` also runs MODEL under: the protocols that compare models.
COMPARISON_PROTOCOLS = ("standard", "optimized", "training-regimes", "clipping", "masking")
ROBUSTNESS_PROTOCOLS = ("misalignment", "occlusion", "noise")


@main.command(short_help="Every table and figure of the paper plus the robustness ones, in one command.")
@click.option("--corpus", default="synthetic", show_default=True, help="Registered corpus or feature-store path.")
@click.option("--profile", default="quick", show_default=True, type=click.Choice(list(PROFILES)),
              help="paper = the paper's models, 25 epochs, 20 trials (GPU days); quick = scaled down (CPU).")
@click.option("--seeds", type=click.IntRange(min=1), default=None,
              help=f"Number of trials.  [default: the profile's: paper 20, quick 3; more than {MAX_SEEDS} need --yes]")
@click.option("--yes", is_flag=True, help=f"Confirm a run of more than {MAX_SEEDS} trials.")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Where units are trained and resumed.  [default: runs/paper-PROFILE]")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Report directory (self-contained: tables, figures, data/).  [default: RUN_DIR/report]")
@click.option("--device", default="auto", show_default=True, type=click.Choice(DEVICES), help=DEVICE_HELP)
@_report_options
@click.option("--force", is_flag=True, help="Write the report into a folder that holds files of yours and no avbench "
                                            "report: avbench keeps every file it did not write.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--paper-only", is_flag=True, help="Skip the robustness protocol (misalignment, occlusion, noise).")
@click.option("--threads", default=None, type=click.IntRange(min=1),
              help="Torch threads per unit.  [default: 1, on every executor; more for one large unit]")
@_executor_options
@user_errors
def reproduce(corpus, profile, seeds, yes, run_dir, out, device, metric, correction, alpha, test_, no_html,
              latex_bundle, proposed, rope, effect, interval, force, quiet, paper_only, threads, executor,
              executor_option, **engine):
    """Run the paper protocol (Tables 1-5, Figs. 3-8) and the robustness protocol, then build the report.

    Trains every unit of `avbench protocols show paper` (resuming whatever RUN_DIR already holds),
    scores the same checkpoints under `avbench protocols show robustness` (misalignment, occlusion,
    noise; nothing more to train) unless --paper-only, then runs `avbench report`.  The default profile and corpus give a synthetic, CPU-sized
    reproduction whose numbers test the software, not emotion recognition.  Units that fail are
    listed at the end (the report is built from the others); rerunning retries them.
    """
    from avbench import stats
    from avbench.profiles import get_profile
    from avbench.report import build_report
    from avbench.runner import UnitsFailed, run as run_protocol

    stats.check_rope(rope, "avbench reproduce")  # refused now, not after hours of training
    stats.check_effect(effect, "avbench reproduce")
    stats.check_interval(interval, seeds or PROFILES[profile].seeds, "avbench reproduce")
    run_dir = run_dir or f"runs/paper-{profile}"
    _check_proposed(proposed, ())
    from avbench.report.build import check_out

    report_dir = Path(out) if out else Path(run_dir) / "report"
    check_out(report_dir, force)  # refused now, not after hours of training
    # the user's models join the comparison protocols (not the ablations, which vary AuxFormer's own options)
    runs = [(name, None) for name in (("paper",) if paper_only else ("paper", "robustness"))]
    runs += [(name, list(proposed)) for name in COMPARISON_PROTOCOLS + ((() if paper_only else ROBUSTNESS_PROTOCOLS))
             if proposed]
    failures = []
    check_run_size([name for name, models in runs if models is None], None, seeds, get_profile(profile), {}, yes)
    for name, models in runs:
        try:
            run_protocol(name, models, corpus=corpus, profile=profile, seeds=seeds, out=run_dir, device=device,
                         progress=not quiet, echo=lambda s: click.echo(s, err=True), threads=threads,
                         executor=executor, executor_options=executor_kwargs(executor, executor_option, engine))
        except UnitsFailed as exc:
            failures.append(exc)
    if proposed:
        _record_proposed(run_dir, proposed, proposed)  # it ran under the comparison protocols above
    try:
        _print_report(build_report(run_dir, out, metric=metric, correction=correction, alpha=alpha, test=test_,
                                   html_page=not no_html, proposed=proposed, latex_bundle=latex_bundle, rope=rope,
                                   effect=effect, interval=interval, force=force))
    except click.ClickException as exc:  # failed artifacts: said together with the failed units
        failures.append(exc.message)
    if failures:
        raise click.ClickException("\n".join(str(f) for f in failures) + "\nThe report above lacks their results; "
                                   "rerunning the same command retries the failed units.")


if __name__ == "__main__":
    sys.exit(main())
