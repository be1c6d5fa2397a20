"""``avbench status``: where each planned unit of a run directory stands, read from disk alone.

Each unit's directory answers (:meth:`avbench.unitdir.UnitDir.state`, as for the runner and the dry
run): a unit is *done* when finished, *running* while a process holds its lock (whatever the
executor or host; with its last finished epoch and an estimate of the time left), *failed* when its
last attempt left ``error.json``, and *pending* otherwise (with what a rerun would resume from).  The planned
units come from ``OUT/plans/`` (written by ``avbench run`` and ``avbench plan --emit``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from avbench.validation import DataError

STATES = ("failed", "running", "pending", "done")  # the order `avbench status` lists them in


@dataclass(frozen=True)
class UnitState:
    """One unit's state.  ``seconds``: recorded training plus evaluation time (done), time since
    it started (running), else None."""

    label: str
    path: str
    state: str
    seconds: float | None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _planned(out: Path) -> dict[str, dict[str, Any]]:
    from avbench.results import read_json

    units: dict[str, dict[str, Any]] = {}
    if not (out / "plans").is_dir():
        return _from_manifests(out)
    for plan in sorted((out / "plans").glob("*.json")):
        for path, entry in read_json(plan)["units"].items():
            if path in units:  # a unit several protocols share: it is done when each one's conditions are
                entry = entry | {"conditions": list(dict.fromkeys(units[path]["conditions"] + entry["conditions"]))}
            units[path] = entry
    return units


def _from_manifests(out: Path) -> dict[str, dict[str, Any]]:
    """The units of a run written before plans were recorded: its protocol manifests list each
    unit's training record and evaluations (paths relative to ``out``)."""
    from avbench.results import read_manifests

    units: dict[str, dict[str, Any]] = {}
    for m in read_manifests(out):
        for e in m.train:
            units.setdefault(str(Path(e.path).parent), {"unit": dict(e.unit), "conditions": []})
        for e in m.entries:
            entry = units.setdefault(str(Path(e.path).parents[1]), {"unit": dict(e.unit), "conditions": []})
            if Path(e.path).stem not in entry["conditions"]:
                entry["conditions"].append(Path(e.path).stem)
    return units


def _semantics(model: str) -> str | None:
    """The semantics a rerun would train ``model`` with (None: the model is not installed here)."""
    try:
        from avbench.units import unit_semantics

        return unit_semantics(model)
    except Exception:  # a plugin model not installed where the status is read
        return None


def unit_state(out: Path, path: str, entry: dict[str, Any]) -> UnitState:
    """The state of the unit planned at ``path`` (relative to ``out``)."""
    from avbench.results import UnitKey, read_json
    from avbench.unitdir import UnitDir, holder

    u = entry["unit"]
    try:
        unit = UnitKey.from_json(u)
    except TypeError:  # a manifest's table key (a run written before plans were recorded)
        unit = UnitKey(u["corpus"], "", u["model"], u["variant"], {}, u["regime"], int(u["seed"]))
    d = UnitDir(out, unit, path=out / path)
    label = f"{unit.model}/{entry.get('label') or unit.variant}/{unit.regime}/seed {unit.seed}"
    who = holder(out, path)
    if who is not None:
        since = time.time() - who["started"] if "started" in who else None
        return UnitState(label, path, "running", since,
                         f"on {who.get('host', '?')} (pid {who.get('pid', '?')})" + _progress(d))
    state = d.state(entry["conditions"], _semantics(unit.model) or d.recorded_semantics() or "")
    if state.finished:
        record = read_json(d.path / "record.json")
        seconds = (record["train_metrics"].get("train_seconds", 0.0)  # none for given weights
                   + sum(e.get("seconds", 0.0) for e in record["evaluations"]))
        return UnitState(label, path, "done", seconds)
    if state.name == "failed":
        error = state.error
        where = f"on {error.host}; " if error and error.host else ""
        return UnitState(label, path, "failed", None,
                         f"{error.summary if error else 'unreadable error record'} ({where}{d.error_file})")
    return UnitState(label, path, "pending", None, state.describe(len(entry["conditions"])))


def _progress(d) -> str:
    """``, epoch 3/12, about 40 s left``: a running unit's last finished epoch and the time its
    remaining epochs take at the last epoch's pace (evaluation not included)."""
    p = d.read_progress()
    if p is None:
        return ", no epoch finished yet"
    left = (p["epochs"] - p["epoch"]) * p["seconds_per_epoch"]
    return f", epoch {p['epoch']}/{p['epochs']}, about {left:.0f} s of training left"


def run_status(out: Path) -> list[UnitState]:
    """Every planned unit of ``out`` and its state, in plan order."""
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(2, "No such directory", str(out))
    planned = _planned(out)
    if not planned:
        raise DataError(f"{out}: no planned units (OUT/plans/*.json) and no protocol manifests "
                        "(OUT/protocols/*.json); is it a run directory written by `avbench run` or `avbench plan --emit`?")
    return [unit_state(out, path, entry) for path, entry in planned.items()]


def format_status(states: list[UnitState]) -> str:
    """A count per state, then one line per unit that is not done, then the done ones' wall times."""
    counts = {s: sum(u.state == s for u in states) for s in STATES}
    lines = [", ".join(f"{n} {s}" for s, n in counts.items()) + f" (of {len(states)} units)"]
    for u in sorted(states, key=lambda u: STATES.index(u.state)):
        wall = f"{u.seconds:8.1f} s" if u.seconds is not None else " " * 10
        lines.append(f"  {u.state:<8} {wall}  {u.label}" + (f"  {u.detail}" if u.detail else ""))
    return "\n".join(lines)
