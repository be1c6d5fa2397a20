"""The import graph of avbench: no cycle and no upward import between the execution layers
(``[tool.importlinter]`` in pyproject.toml; docs/architecture.md draws the layers)."""

from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0
