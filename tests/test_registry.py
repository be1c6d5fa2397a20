"""The generic registry: lookups, close-match hints, duplicates."""

import pytest

from avbench.registry import MODELS, PROTOCOLS, Registry, RegistryError


def test_unknown_name_suggests_close_matches_and_lists_all():
    with pytest.raises(RegistryError) as err:
        MODELS.get("auxformr")
    msg = str(err.value)
    assert "Did you mean 'auxformer'?" in msg and "Available:" in msg and "auxformer" in msg
    with pytest.raises(RegistryError, match="Unknown protocol 'maskng'. Did you mean 'masking'"):
        PROTOCOLS.get("maskng")


def test_registering_a_taken_name_fails():
    reg = Registry("thing", "avbench.tests.none")
    reg.register("a", 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", 2)
    assert reg.get("a") == 1 and reg.names() == ["a"]


def test_decorator_form_and_builtins_load_lazily():
    reg = Registry("thing", "avbench.tests.none")

    @reg.register("f")
    def f():
        return 1

    assert reg.get("f") is f
    assert "auxformer" in MODELS and "masking" in PROTOCOLS


class _EntryPoint:
    group = "avbench.models"

    def __init__(self, name, value, obj):
        self.name, self.value, self._obj = name, value, obj

    def load(self):
        return self._obj


def test_a_builder_named_by_an_entry_point_becomes_a_model_and_anything_else_is_refused():
    from avbench.models import ModelMeta, create_model, get_model_meta
    from avbench.models.auxformer import AuxFormer

    def builder(*, num_classes, audio_dim, visual_dim, width: int = 8):
        return AuxFormer(num_classes=num_classes, audio_dim=audio_dim, visual_dim=visual_dim, d_model=width,
                         heads=2, layers=1)

    MODELS._load_entry_point(_EntryPoint("ep-builder", "pkg:builder", builder))
    try:
        meta = get_model_meta("ep-builder")
        assert isinstance(meta, ModelMeta) and meta.options() == {"width": 8}
        assert meta.modalities == ("audio", "visual")
        create_model("ep-builder", num_classes=3, audio_dim=6, visual_dim=4, width=4)
    finally:
        MODELS.unregister("ep-builder")
    with pytest.raises(RegistryError, match="'ep-bad' \\(entry point 'pkg:THING'.*Got 42 instead"):
        MODELS._load_entry_point(_EntryPoint("ep-bad", "pkg:THING", 42))
    assert "ep-bad" not in MODELS


@pytest.fixture
def broken_plugin(tmp_path, monkeypatch):
    """A model plugin, installed beside the real ones, whose module raises on import."""
    from importlib.metadata import EntryPoint

    import avbench.registry as registry

    (tmp_path / "avbench_broken_plugin.py").write_text("raise RuntimeError('built for another torch')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = EntryPoint("broken-model", "avbench_broken_plugin", "avbench.models")
    real = registry.entry_points
    monkeypatch.setattr(registry, "entry_points",
                        lambda group: [*real(group=group), *([ep] if group == "avbench.models" else [])])
    for attr, value in (("_loaded", False), ("_pending", {}), ("_broken", {})):
        monkeypatch.setattr(MODELS, attr, value, raising=False)  # entry points listed afresh, then restored
    return ep.name


def test_a_broken_plugin_is_listed_with_its_error_and_breaks_nothing_else(broken_plugin):
    from click.testing import CliRunner

    from avbench.cli import main

    assert MODELS.get("auxformer") and "avbench_broken_plugin" not in __import__("sys").modules
    r = CliRunner().invoke(main, ["models", "list", "--profile", "smoke"])
    assert r.exit_code == 0, r.output
    line = next(line for line in r.output.splitlines() if line.startswith(broken_plugin))
    assert "RuntimeError: built for another torch" in line and "Traceback" not in r.output
    assert any(line.startswith("auxformer ") for line in r.output.splitlines())
    assert broken_plugin not in MODELS.names() and "mult" in MODELS


def test_only_a_run_naming_a_broken_plugin_fails(broken_plugin, tiny_store, tmp_path):
    from click.testing import CliRunner

    from avbench.cli import main

    args = ["run", "--protocol", "standard", "--corpus", str(tiny_store.path), "--profile", "smoke", "--seeds", "1",
            "--out", str(tmp_path / "run"), "--dry-run"]
    r = CliRunner().invoke(main, [*args, "--model", "auxformer"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, [*args, "--model", broken_plugin])
    assert r.exit_code == 2 and isinstance(r.exception, SystemExit), r.output
    assert "The model plugin 'broken-model' (entry point 'avbench_broken_plugin'" in r.output
    assert "RuntimeError: built for another torch" in r.output and "Traceback" not in r.output
