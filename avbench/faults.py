"""Crash points: where the kill -9 tests stop a run, so that resuming is tested at exact places.

Setting ``AVBENCH_CRASH_AT=POINT:N`` makes the N-th pass of this process through ``POINT``
kill its whole process group with SIGKILL (no cleanup handlers run, as with ``kill -9`` or
the OOM killer; with ``--jobs 2`` the parent and the other worker die too);
``POINT:N:SIGINT`` sends SIGINT instead, as Ctrl-C in a terminal does.  Points:
``epoch`` (a training state was saved), ``evaluation-record`` (a condition's record was written,
its probabilities not yet), ``evaluation`` (one condition's record and probabilities were written),
``atomic-write`` (a finished temporary is about to be renamed into place) and ``synth-clip``
(one clip of a new store was written).  Unset, each point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_passes: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Kills the process group here if ``AVBENCH_CRASH_AT`` asks for this pass of ``name``."""
    spec = os.environ.get("AVBENCH_CRASH_AT")
    if not spec:
        return
    point, _, rest = spec.partition(":")
    if point != name:
        return
    nth, _, sig = rest.partition(":")
    _passes[name] = _passes.get(name, 0) + 1
    if _passes[name] == int(nth or 1):
        os.killpg(os.getpgrp(), getattr(signal, sig or "SIGKILL"))


def fail_point(unit_label: str) -> None:
    """Raises in the unit ``AVBENCH_FAIL_UNIT`` names (``model/variant/regime/seed N``), as a bug in
    a model would, or ends the process running the unit ``AVBENCH_KILL_UNIT`` names, as the OOM
    killer would: the tests' failing units, for failure isolation on every executor."""
    if os.environ.get("AVBENCH_FAIL_UNIT") == unit_label:
        raise RuntimeError(f"injected failure in {unit_label} (AVBENCH_FAIL_UNIT)")
    if os.environ.get("AVBENCH_KILL_UNIT") == unit_label:  # a worker killed mid-unit (OOM killer, kill -9)
        os._exit(1)
