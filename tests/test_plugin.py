"""The plugin example installs as a separate package and registers through the entry point.

The example is installed into a private directory (pip --target; a
hand-written ``.dist-info`` if pip cannot build offline), then a fresh
interpreter with only that directory added to its path must find the model
through ``avbench.registry.MODELS`` -- i.e. through the ``avbench.models``
entry-point group, never by an import path the test names.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import avbench

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "avbench-plugin-example"
MODULE = "avbench_plugin_example"

CHECK = textwrap.dedent(f"""
    import sys
    import torch
    from avbench.registry import MODELS
    from avbench.models import create_model, get_model_meta

    assert {MODULE!r} not in sys.modules
    assert "late-fusion-gru" in MODELS.names(), MODELS.names()
    assert {MODULE!r} in sys.modules          # imported by the registry, through the entry point
    assert "auxformer" in MODELS.names()      # the built-ins are still there
    meta = get_model_meta("late-fusion-gru")
    assert meta.options() == {{"hidden": 64, "dropout": 0.1}}, meta.options()
    assert set(meta.constraints()) == {{"hidden", "dropout"}}, meta.constraints()
    try:
        create_model("late-fusion-gru", num_classes=3, audio_dim=12, visual_dim=10, dropout=1.0)
        raise AssertionError("dropout=1.0 was accepted")
    except ValueError as exc:
        assert "The 'dropout' option of model 'late-fusion-gru'" in str(exc), exc
    torch.manual_seed(0)
    model = create_model("late-fusion-gru", num_classes=3, audio_dim=12, visual_dim=10, **meta.quick).eval()
    la, lv = torch.tensor([5, 9]), torch.tensor([4, 7])
    audio, visual = torch.randn(2, 9, 12), torch.randn(2, 7, 10)
    audio[0, 5:] = 0; visual[0, 4:] = 0
    with torch.no_grad():
        out = model(audio, visual, la, lv)
        alone = model(audio[:1, :5], visual[:1, :4], la[:1], lv[:1])
    assert out["av"].shape == (2, 3) and model.loss_weights == {{"av": 1.0}}
    assert torch.allclose(out["av"][:1], alone["av"], atol=1e-5)
    print("plugin ok")
""")


def _install(source: Path, target: Path) -> str:
    """pip-installs the example into ``target``; falls back to a hand-made dist-info. Returns the method."""
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1", "PIP_NO_INPUT": "1"}
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
           "--target", str(target), str(source)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode == 0 and list(target.glob("*.dist-info/entry_points.txt")):
        return "pip"
    # Offline without a build backend: write what the entry-point machinery reads.
    shutil.copytree(source / MODULE, target / MODULE, dirs_exist_ok=True)
    info = target / "avbench_plugin_example-0.1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: avbench-plugin-example\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[avbench.models]\nlate-fusion-gru = {MODULE}\n")
    return "dist-info"


def test_plugin_registers_through_the_entry_point(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path / "site"
    target.mkdir()
    method = _install(source, target)
    entry_points = next(target.glob("*.dist-info/entry_points.txt")).read_text()
    assert "[avbench.models]" in entry_points and "late-fusion-gru" in entry_points

    # the plugin's directory, and the avbench under test ahead of an installed one (a worktree)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(Path(avbench.__file__).parents[1])])}
    done = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 0, f"({method}) {done.stdout}\n{done.stderr}"
    assert "plugin ok" in done.stdout

