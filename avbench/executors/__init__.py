"""Where units run: executors as plugins.

An executor is one class (:class:`Executor`) that takes the pending units' tasks and yields one
:class:`~avbench.units.UnitOutcome` per task as units finish, never cancelling the rest on a
failure (:func:`avbench.worker.execute` turns a unit's exception into an error record; a worker
that dies is reported with :func:`avbench.worker.lost`).  Each class declares its own options
(:class:`ExecutorOption`), which the command line turns into flags and checks: an option given
to an executor that does not declare it is refused.

Executors are found by name in the ``avbench.executors`` entry-point group (the built-in ones
are also listed here, so that an installation with stale metadata still has them), and only the
named one is imported: ``--help`` and other commands never load every plugin.  Adding an
executor is one module with one class plus an entry point::

    [project.entry-points."avbench.executors"]
    mine = "my_package.my_module:MyExecutor"
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Protocol

from avbench.validation import ValidationError

if TYPE_CHECKING:  # the CLI reads the executors' options without importing pandas
    from avbench.units import UnitOutcome, UnitTask

GROUP = "avbench.executors"
#: The built-in executors (also declared as entry points in pyproject.toml).
BUILTIN = {"local": "avbench.executors.local:LocalExecutor", "dask": "avbench.executors.dask:DaskExecutor",
           "ray": "avbench.executors.ray:RayExecutor", "slurm": "avbench.executors.slurm:SlurmExecutor"}


@dataclass(frozen=True)
class ExecutorOption:
    """One option of an executor.

    Attributes:
        name: The keyword its class takes (``scheduler``).
        flag: The command-line flag (``--scheduler``).
        type: ``str``, ``int`` or ``float``.
        default: Its value when not given.
        minimum: The smallest value a number may take.
        help: One line for ``avbench run --help``.
        metavar: The value's name in the help.
        hidden: Not listed in the help (the tests' stand-ins).
    """

    name: str
    flag: str
    type: type = str
    default: Any = None
    minimum: float | None = None
    help: str = ""
    metavar: str | None = None
    hidden: bool = False


class Executor(Protocol):
    """What an executor is: a name, its options, the extra it needs, and ``map``."""

    name: ClassVar[str]
    options: ClassVar[tuple[ExecutorOption, ...]]
    extra: ClassVar[str | None]      # the pip extra that installs its engine (None: none needed)
    runs_here: ClassVar[bool]        # units run on this machine: the device is resolved here

    def __init__(self, *, device: str, **options: Any) -> None: ...

    def map(self, tasks: list[UnitTask]) -> Iterator[UnitOutcome]: ...


def executor_names() -> list[str]:
    """Every executor's name (reads entry-point metadata; imports nothing)."""
    return sorted(set(BUILTIN) | {ep.name for ep in entry_points(group=GROUP)})


def get_executor(name: str) -> type[Executor]:
    """The executor class called ``name``, importing only its module; refused with close names."""
    target = BUILTIN.get(name) or next((ep.value for ep in entry_points(group=GROUP, name=name)), None)
    if target is None:
        names = executor_names()
        close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValidationError(f"The 'executor' parameter of avbench run must be one of {', '.join(map(repr, names))}."
                              f"{hint} Got {name!r} instead.", param="executor", owner="avbench run")
    module, _, attr = target.partition(":")
    try:
        return getattr(import_module(module), attr)
    except Exception as exc:  # a broken plugin: named, with its own error
        raise ValidationError(f"The executor {name!r} (entry point {target!r} in group {GROUP!r}) cannot be "
                              f"loaded: {type(exc).__name__}: {exc}") from None


def check_options(name: str, cls: type[Executor], options: dict[str, Any]) -> None:
    """Refuses an option the executor ``name`` does not declare, naming the executors it belongs to."""
    declared = [o.name for o in cls.options]
    for key in options:
        if key not in declared:
            owners = [n for n in BUILTIN if n != name and key in {o.name for o in get_executor(n).options}]
            where = (f" applies to --executor {' / '.join(owners)} only" if owners
                     else f" is not an option of the {name!r} executor")
            raise ValidationError(f"The {key!r} option{where}; the {name!r} executor takes "
                                  f"{', '.join(repr(o) for o in declared) or 'no options'}. Got --executor {name}.",
                                  param=key, owner="avbench run")


def make_executor(name: str, *, device: str, options: dict[str, Any] | None = None) -> Executor:
    """The executor ``name`` with ``options`` (each checked against what it declares; the others
    at their declared defaults)."""
    cls = get_executor(name)
    check_options(name, cls, dict(options or {}))
    return cls(device=device, **({o.name: o.default for o in cls.options} | dict(options or {})))


def need(module: str, executor: str, extra: str):
    """Imports an executor's engine, or refuses with the install command."""
    try:
        return import_module(module)
    except ImportError:
        raise ValidationError(f"The '{executor}' executor needs {module}, which is not installed. "
                              f"Install it with: pip install 'avbench[{extra}]'") from None
