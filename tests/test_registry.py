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
