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
