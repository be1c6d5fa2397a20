"""Which model of a run is *the user's*: the proposed model every table tests and every figure highlights.

One owner for the question, asked by ``avbench run --proposed`` (which records the choice in the run
directory), ``avbench reproduce --proposed`` and ``avbench report --proposed``.  The report records the
answer in its ``data/provenance.json``, so a report rebuilt from ``data/`` (where the user's plugin may
not be installed, and its role cannot be read from the registry) tests the same model.

Precedence: the names given to ``report --proposed``; else those recorded by ``run --proposed`` in the
run directory; else those a report recorded in its ``data/provenance.json``; else the default rule of
:func:`default_proposed`.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterable, Sequence

from avbench.validation import DataError, ValidationError

#: The file ``avbench run --proposed`` writes into the run directory.
CHOICE_FILE = "proposed.json"
#: The paper's proposed model: the default when the run holds no other model declared "proposed".
PAPER_MODEL = "auxformer"


def _role(model: str) -> str | None:
    """The model's declared role, or None when it is not installed here."""
    try:
        from avbench.models import get_model_meta

        return get_model_meta(model).presentation.role
    except Exception:  # not installed where the report is built: its role is unknown
        return None


def default_proposed(models: Iterable[str]) -> tuple[str, ...]:
    """The default choice among the run's ``models``: the single one declared ``role="proposed"`` other
    than AuxFormer, else AuxFormer (when the run has it), else none.

    Raises:
        ValidationError: Two or more such models: the user must choose (``--proposed NAME``).
    """
    models = list(dict.fromkeys(str(m) for m in models))
    candidates = sorted(m for m in models if m != PAPER_MODEL and _role(m) == "proposed")
    if len(candidates) > 1:
        raise ValidationError(f"The run holds {len(candidates)} models declared proposed besides AuxFormer: "
                              f"{', '.join(candidates)}. Choose which one the tables test with --proposed NAME "
                              f"(repeat it to build the testing tables once per model).")
    if candidates:
        return tuple(candidates)
    return (PAPER_MODEL,) if PAPER_MODEL in models else ()


def check_proposed(names: Sequence[str], models: Iterable[str], where: str, file: str | Path | None = None
                   ) -> tuple[str, ...]:
    """``names`` as given to ``--proposed`` (or, with ``file``, recorded there), each a model of the run
    (``models``); repeats dropped.

    Raises:
        ValidationError: A name given is not a model of the run (with the closest names).
        DataError: A name recorded in ``file`` is not (a choice to override or delete).
    """
    models = sorted(set(str(m) for m in models))
    for name in names:
        if name not in models:
            close = difflib.get_close_matches(str(name), models, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            if file is not None:
                raise DataError(f"{file}: records {name!r} as the proposed model, which is not a model of the run "
                                f"(models: {', '.join(models) or 'none'}). Choose one with --proposed NAME, or "
                                f"delete the file.")
            raise ValidationError(f"The '--proposed' option of {where} must name a model of the run. Got {name!r} "
                                  f"instead.{hint} Models of the run: {', '.join(models) or 'none'}.")
    return tuple(dict.fromkeys(names))


def record_choice(run_dir: str | Path, names: Sequence[str]) -> Path:
    """Writes the choice of ``avbench run --proposed`` into ``run_dir`` for ``avbench report``."""
    from avbench.results import write_json

    path = Path(run_dir) / CHOICE_FILE
    write_json(path, {"proposed": list(dict.fromkeys(names))})
    return path


def recorded_choice(run_dir: str | Path) -> tuple[str, ...]:
    """The choice recorded in ``run_dir`` (by ``run --proposed``), or () when none is."""
    from avbench.results import read_json

    path = Path(run_dir) / CHOICE_FILE
    if not path.is_file():
        return ()
    record = read_json(path)
    names = record.get("proposed") if isinstance(record, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise DataError(f"{path}: expected {{\"proposed\": [model names]}}; delete it or rerun with --proposed.")
    return tuple(names)


def choose_proposed(requested: Sequence[str], models: Iterable[str], *, recorded: Sequence[str] = (),
                    saved: Sequence[str] = (), root: str | Path = ".") -> tuple[str, ...]:
    """The proposed models of a report, first the main one (see the module's precedence).

    Args:
        requested: ``avbench report --proposed`` (may be empty).
        models: The models of the run.
        recorded: What ``avbench run --proposed`` recorded in the run directory.
        saved: What an earlier report recorded in its ``data/provenance.json``.
        root: The run directory (or ``data/`` folder) the choices were read from, for messages.
    """
    models = list(models)
    if requested:
        return check_proposed(requested, models, "avbench report")
    for names, file in ((recorded, Path(root) / CHOICE_FILE), (saved, Path(root) / "provenance.json")):
        if names:
            return check_proposed(names, models, "avbench report", file=file)
    return default_proposed(models)


def proposed_of_run(run, requested: Sequence[str] = ()) -> tuple[str, ...]:
    """:func:`choose_proposed` for a :class:`avbench.report.rundata.RunData`: its models, the choice recorded
    in its directory and the one its saved ``data/provenance.json`` holds."""
    root = run.source if Path(run.source).is_dir() else Path(run.source).parent
    return choose_proposed(requested, run.table["model"].astype(str).unique(), recorded=recorded_choice(root),
                           saved=run.saved_provenance.get("proposed") or (), root=root)
