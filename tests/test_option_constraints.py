"""Model options are checked from the constraints each family declares once, next to the defaults.

The cases are derived from the declarations themselves (as scikit-learn's common tests derive
them from ``_parameter_constraints``): for every registered model and every constrained option,
values just outside the constraint must be refused by ``create_model`` with a message naming the
model and the option, and the constraint's edges, the defaults and the ``quick`` settings must
build.  A new family, or a new option, is covered the day it is registered.
"""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from avbench.cli import main
from avbench.models import create_model, get_model_meta
from avbench.models.base import check_config
from avbench.registry import MODELS
from avbench.validation import PositiveInt, ValidationError

DIMS = dict(num_classes=3, audio_dim=12, visual_dim=10)
PAPER_DIMS = dict(num_classes=4, audio_dim=130, visual_dim=4096)


def context(name: str, config: dict | None = None) -> dict:
    """What a rule may read: every option (defaults, ``quick`` settings, ``config``) and the dims."""
    meta = get_model_meta(name)
    return {**DIMS, **meta.options(), **meta.quick, **(config or {})}


def cases(which: str) -> list:
    """(model, option, value) for every constrained option of every model: the values its
    constraints call ``invalid`` or ``valid`` in the model's ``quick`` setting."""
    out = []
    for name in MODELS.names():
        ctx = context(name)
        for option, rules in get_model_meta(name).constraints().items():
            values = [v for rule in rules for v in getattr(rule, which)(ctx)]
            if which == "valid":  # an edge of one rule may lie outside another rule of the option
                values = [v for v in values if all(rule.accepts(v, {**ctx, option: v}) for rule in rules)]
            assert values, f"{name}: no {which} values for {option!r}"
            out += [pytest.param(name, option, v, id=f"{name}-{option}-{v!r}") for v in values]
    return out


def build(name: str, config: dict, dims: dict = DIMS):
    with torch.device("meta"):  # no memory, no time: only whether it builds matters here
        return create_model(name, **dims, **config)


def consistent(name: str, option: str, value) -> dict:
    """The ``quick`` config with ``option=value``, and every other option whose rule reads
    ``option`` (heads dividing d_model) moved to a value that rule accepts."""
    meta = get_model_meta(name)
    config = {**meta.quick, option: value}
    for other, rules in meta.constraints().items():
        for rule in rules:
            if other != option and rule.reads and not rule.accepts(context(name, config)[other], context(name, config)):
                config[other] = rule.valid(context(name, config))[0]
    return config


def test_every_family_declares_constraints():
    for name in MODELS.names():
        meta = get_model_meta(name)
        if getattr(meta.builder, "func", meta.builder).__module__.startswith(("avbench.", "baselines.")):
            assert set(meta.constraints()) == set(meta.options()), name


@pytest.mark.parametrize("name,option,value", cases("invalid"))
def test_a_value_outside_a_constraint_is_refused_naming_model_and_option(name, option, value):
    config = {**get_model_meta(name).quick, option: value}
    with pytest.raises(ValidationError, match=f"^The '{option}' option of model '{name}' must be .* Got "):
        create_model(name, **DIMS, **config)


@pytest.mark.parametrize("name,option,value", cases("valid"))
def test_a_value_on_the_edge_of_a_constraint_builds(name, option, value):
    build(name, consistent(name, option, value))


@pytest.mark.parametrize("name", MODELS.names())
def test_the_defaults_and_the_quick_settings_build(name):
    """The paper's defaults at the paper's dimensions, and the scaled-down profile's settings."""
    build(name, {}, PAPER_DIMS)
    build(name, get_model_meta(name).quick)


def test_heads_must_divide_the_width_it_is_given():
    """A rule reading another option judges with that option's value, the dimensions standing
    in where the model derives it (AuxFormer's ``d_model=None`` keeps the audio width)."""
    with pytest.raises(ValidationError, match=r"divides audio_dim \(130\), which stands for d_model"):
        build("auxformer", {"heads": 7}, PAPER_DIMS)
    build("auxformer", {"heads": 13}, PAPER_DIMS)
    with pytest.raises(ValidationError, match=r"'heads' option of model 'mult' .* divides d_model \(32\)"):
        build("mult", {"d_model": 32, "heads": 5})
    with pytest.raises(ValidationError, match="'d_model' option"):  # the width is at fault, not heads
        build("mult", {"d_model": 0})


def test_check_config_refuses_before_the_dimensions_are_known():
    """A run checks every variant when it plans, before any data is read."""
    with pytest.raises(ValidationError, match="'out_dropout' option of model 'xmodal'"):
        check_config("xmodal", {"out_dropout": 1.0})
    check_config("auxformer", {"heads": 7})  # depends on the audio width: create_model judges it


def test_a_model_without_declared_constraints_takes_any_value():
    from avbench.models import ModelMeta
    from avbench.models.auxformer import AuxFormer

    def builder(*, num_classes, audio_dim, visual_dim, tag: OnlyForTypeCheckers = "x"):  # noqa: F821
        return AuxFormer(num_classes, audio_dim, visual_dim, d_model=4, heads=2, layers=1)

    MODELS.register("no-constraints", ModelMeta("no-constraints", builder, ("audio", "visual")))
    try:
        assert get_model_meta("no-constraints").constraints() == {}
        assert get_model_meta("no-constraints").options() == {"tag": "x"}
        create_model("no-constraints", **DIMS, tag=[1, "anything"])
    finally:
        MODELS.unregister("no-constraints")


def test_an_annotation_only_a_type_checker_resolves_leaves_the_other_constraints():
    from avbench.models import ModelMeta
    from avbench.models.auxformer import AuxFormer

    # string annotations (from __future__ import annotations) are evaluated in the builder's module
    def builder(*, num_classes, audio_dim, visual_dim, tag: OnlyForTypeCheckers = "x",  # noqa: F821
                layers: PositiveInt = 1):
        return AuxFormer(num_classes, audio_dim, visual_dim, d_model=4, heads=2, layers=layers)

    MODELS.register("half-typed", ModelMeta("half-typed", builder, ("audio", "visual")))
    try:
        assert list(get_model_meta("half-typed").constraints()) == ["layers"]
        with pytest.raises(ValidationError, match="'layers' option of model 'half-typed'"):
            create_model("half-typed", **DIMS, layers=0)
    finally:
        MODELS.unregister("half-typed")


def test_models_show_prints_each_constraint_next_to_its_default():
    r = CliRunner().invoke(main, ["models", "show", "auxformer"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert "  heads = 10: an int in [1, inf); divides d_model (audio_dim when d_model is None)" in lines
    assert "  out_dropout = 0.2: a float in [0, 1)" in lines
    assert "  token = \"last\": one of 'last', 'cls', 'mean'" in lines
