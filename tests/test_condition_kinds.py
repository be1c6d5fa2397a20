"""Condition kinds are a registry: a kind from another package (here temporal reversal, registered
through the ``avbench.conditions`` entry-point group of a package written into a temporary
directory) runs in protocols and gets its own robustness figure and Table R1 section, with no
change to avbench."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from avbench.conditions import Condition, expand, get_kind, kinds
from avbench.validation import ValidationError

PLUGIN = textwrap.dedent('''
    import numpy as np
    from avbench.conditions import ConditionKind


    def reverse(x, level, rng, rate):
        """Plays the first ``level`` of the clip backwards."""
        k = int(round(level * len(x)))
        y = x.copy()
        y[:k] = x[:k][::-1]
        return y


    REVERSE = ConditionKind("time_reverse", reverse, bounds=(0.0, 1.0), level_unit="fraction of the clip reversed",
                            label="reversed", what="temporal reversal")
''')

CHECK = textwrap.dedent('''
    import sys, warnings
    from pathlib import Path
    from avbench.report import build_report
    from avbench.runner import run

    store, out = sys.argv[1], Path(sys.argv[2])
    protocol = {"name": "reversal", "models": ["auxformer", "baseline1"], "summary": True, "conditions": [
        {"kind": "full"}, {"kind": "time_reverse", "modality": "audio", "levels": [0.5, 1.0]},
        {"kind": "time_reverse", "modality": "visual", "levels": [0.5, 1.0]}]}
    from avbench.protocol import Protocol
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = run(Protocol.from_dict(protocol), corpus=store, profile="smoke", seeds=2, out=out, progress=False,
                echo=lambda s: None)
    assert set(s.table.condition) >= {"time_reverse_audio", "time_reverse_visual", "train"}, set(s.table.condition)
    report = build_report(out, strict=True)
    figure = next(f for f in report.figures if f.key.endswith("_reverse"))
    print("FIGURE", figure.number, figure.title, "|", figure.caption)
    print("TABLE", (out / "report" / "tables" / "robustness.md").read_text())
''')


def test_builtin_kinds_declare_what_the_runner_and_report_need():
    names = [k.name for k in kinds()]
    assert names[:6] == ["full", "clip", "mask", "burst", "shift", "noise"]
    assert get_kind("clip").removes and not get_kind("mask").removes
    assert get_kind("mask").keep_mask is not None and get_kind("shift").keep_mask is None
    assert Condition("clip", "audio").removes() == {"audio"}
    with pytest.raises(ValidationError, match="'kind' parameter.*Got 'reverse'"):
        expand({"kind": "reverse", "modality": "audio", "levels": [0.5]})
    with pytest.raises(ValidationError, match="levels"):
        expand({"kind": "mask", "modality": "audio", "levels": [1.5]})


def test_training_shift_is_the_test_time_shift():
    import torch

    from avbench.batching import Batch
    from avbench.training import random_shift

    x = np.arange(1, 41, dtype=np.float32).reshape(1, 20, 2)
    batch = Batch(torch.from_numpy(x), torch.from_numpy(x.copy()), torch.tensor([15]), torch.tensor([15]),
                  torch.tensor([0]), np.array([0]))
    rng = np.random.default_rng(5)
    shifted = random_shift(batch, 500, (10.0, 10.0), rng)
    draw = np.random.default_rng(5)
    which, ms = draw.integers(0, 2, size=1), draw.uniform(-500, 500, size=1)
    stream = (shifted.audio if which[0] == 0 else shifted.visual)[0, :15].numpy()
    expected = Condition("shift", "audio", float(ms[0])).apply(x[0, :15], x[0, :15], rng=draw, rates=(10.0, 10.0))[0]
    np.testing.assert_array_equal(stream, expected)


def test_a_plugin_condition_kind_gets_its_own_robustness_figure(tiny_store, tmp_path):
    pkg = tmp_path / "site"
    (pkg / "reversal_plugin").mkdir(parents=True)
    (pkg / "reversal_plugin" / "__init__.py").write_text(PLUGIN)
    info = pkg / "reversal_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: reversal-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[avbench.conditions]\ntime_reverse = reversal_plugin:REVERSE\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(pkg), *sys.path]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", CHECK, str(tiny_store.path), str(tmp_path / "run")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    figure = next(line for line in done.stdout.splitlines() if line.startswith("FIGURE"))
    assert "Fig. R4 Temporal reversal" in figure and "under temporal reversal of one modality" in figure
    # Table R1 sections, labelled as the kind declares although its name holds '_' (a name split at the first
    # '_' read kind 'time' and no label)
    assert "Audio reversed" in done.stdout and "Visual reversed" in done.stdout
