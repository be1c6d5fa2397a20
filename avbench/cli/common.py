"""What every avbench command shares: the ``avbench`` group, one message per mistake (no traceback),
the options of planning a run and of the executors, and the checks of a run's size."""

from __future__ import annotations

import functools
import logging
import signal
import sys
import threading

import click
import yaml

from avbench.devices import DEVICES
from avbench.profiles import BATCHINGS, MEMORY_MODES, PRECISIONS, PROFILES
from avbench.registry import RegistryError
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
        click.option("--weights", "weights", multiple=True, metavar="MODEL=PATH",
                     help="Score MODEL with these weights instead of training it: a state dict saved by the released "
                          "AuxFormer code (final_head.pt) or an avbench model.pt; its units get regime 'pretrained' "
                          "and variant 'weights-<sha256 prefix>'. Repeat for several models."),
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


def _wide_pandas():
    import pandas as pd

    return pd.option_context("display.width", 250, "display.max_columns", 100, "display.max_rows", 500)
