"""The model contract, model metadata and the factory.

A model is a builder function registered with :func:`register_model`, the way
timm registers variants: a few lines that call a family's constructor with
settings.  The builder's keyword-only parameters are the model's options; an
option's annotation may declare what it accepts
(``heads: Annotated[int, Interval(int, 1, None), Divides("d_model")] = 10``,
:mod:`avbench.validation`), once per family, and :func:`create_model` checks it
before building.  An option without one takes any value.  Protocols and the
runner see only this contract:

* ``forward(audio, visual, audio_lengths, visual_lengths)`` takes zero-padded
  ``(B, T, D)`` batches with per-clip lengths and returns named logits, e.g.
  ``{"av": ..., "a": ..., "v": ...}``;
* ``loss_weights`` maps output names to the weights of Eq. 6;
* ``predict(outputs)`` turns the named outputs into the logits scored at test
  and whose cross-entropy on the dev set selects the epoch (for a model with
  several heads, the mean of their logits).
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from avbench.registry import MODELS, RegistryError
from avbench.validation import Constraint, ValidationError, check_choice, check_options, did_you_mean

MODALITIES = ("audio", "visual")
DIMENSIONS = ("num_classes", "audio_dim", "visual_dim")


class AVModel(nn.Module):
    """Base class of every avbench model."""

    loss_weights: dict[str, float]

    def predict(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The logits scored at test and selected on: ``av`` unless a model says otherwise."""
        return outputs["av"]


ROLES = ("proposed", "baseline", "upscaled")


@dataclass(frozen=True)
class Presentation:
    """How reports show a model, declared by the model itself, so that a plugin model can take
    any place in every table and figure.

    Attributes:
        label: Name in figure legends (``Baseline 2 (MulT)``); default: the registry name.
        short_label: Name on crowded axes (``B2 (MulT)``); default: ``label``.
        table_label: Name of its table rows (``Baseline 2``); default: ``label``.
        key: What the name means, for captions (``Baseline 2 = MulT ... without its text branch``).
        role: ``proposed`` (the model the tables test against every other: ``*`` marks),
            ``baseline``, or ``upscaled`` (a widened baseline, drawn beside it in Fig. 8).
        upscaled_from: For ``upscaled``: the baseline it widens (it takes its colour, hatched).
        color: Line and bar colour (hex); default: one of the palette's spare colours.
        marker: Matplotlib marker; default: one of the spare markers.
        order: Position in tables and legends (the paper's models first).
        option_labels: How an ablation row names a setting of one of the model's options
            (``{"pos_enc": {False: "No Pos. Encoding"}}``); default ``option = value``.
    """

    label: str = ""
    short_label: str = ""
    table_label: str = ""
    key: str = ""
    role: str = "baseline"
    upscaled_from: str = ""
    color: str = ""
    marker: str = ""
    order: int = 100
    option_labels: dict[str, dict[Any, str]] = field(default_factory=dict, compare=False)

    def __post_init__(self):
        check_choice(self.role, "role", "a model's Presentation", ROLES)


@dataclass(frozen=True)
class ModelMeta:
    """What a model declares about itself (mteb's ModelMeta, trimmed).

    Attributes:
        name: Registry name.
        builder: ``builder(num_classes, audio_dim, visual_dim, **config) -> AVModel``.
        modalities: The modalities the model reads; a protocol that removes all
            of them reports the unit as not applicable instead of scoring it.
        citation: Where the architecture comes from.
        description: One line for ``avbench models list``.
        quick: Config overrides of the ``quick`` profile (a scaled-down model).
        paper_params: The parameter count the paper reports at 4 classes,
            audio 130, visual 4096 (Table 5), when it reports one.
        params_tolerance: Allowed relative deviation from ``paper_params``.
        semantics_version: Bumped whenever the same name, config and seed would train or predict
            differently; it joins the identity of every trained unit, so results of an older
            version are retrained, never silently reused.
        notes: Further lines for ``avbench models show``.
        presentation: Names, role, colour and marker in reports (:class:`Presentation`).
    """

    name: str
    builder: Callable[..., AVModel]
    modalities: tuple[str, ...]
    citation: str = ""
    description: str = ""
    quick: dict[str, Any] = field(default_factory=dict)
    paper_params: int | None = None
    params_tolerance: float = 0.0
    semantics_version: int = 1
    notes: str = ""
    presentation: Presentation = Presentation()

    def _option_parameters(self, annotations: bool = False) -> dict[str, inspect.Parameter]:
        """The builder's keyword-only parameters but the dimensions.

        A builder is a function or, for a variant, ``functools.partial(FamilyClass, **settings)``,
        whose signature already shows the variant's defaults and the family's constraints.

        Args:
            annotations: Evaluate annotations written as strings (``from __future__ import
                annotations``) in the builder's module; one that only a type checker resolves
                declares nothing to check, and the others keep their constraints.
        """
        params = {k: p for k, p in inspect.signature(self.builder).parameters.items()
                  if k not in DIMENSIONS and p.kind is p.KEYWORD_ONLY}
        if not annotations:
            return params
        target = getattr(self.builder, "func", self.builder)  # a variant's functools.partial
        namespace = getattr(target.__init__ if isinstance(target, type) else target, "__globals__", {})
        for k, p in params.items():
            if isinstance(p.annotation, str):
                try:
                    params[k] = p.replace(annotation=eval(p.annotation, namespace))
                except Exception:  # a name only a type checker sees (imported under TYPE_CHECKING)
                    pass
        return params

    def options(self) -> dict[str, Any]:
        """The builder's config options (its keyword-only parameters) and their defaults."""
        return {k: p.default for k, p in self._option_parameters().items()}

    def constraints(self) -> dict[str, tuple[Constraint, ...]]:
        """What each option accepts, as declared in its annotation
        (``heads: Annotated[int, Interval(int, 1, None)] = 10``); options without are absent."""
        out = {}
        for k, p in self._option_parameters(annotations=True).items():
            rules = tuple(m for m in getattr(p.annotation, "__metadata__", ()) if isinstance(m, Constraint))
            if rules:
                out[k] = rules
        return out

    def is_default(self, config: dict[str, Any], base: dict[str, Any] | None = None) -> bool:
        """True if ``config`` leaves the model as it is on top of ``base`` (e.g. ``pos_enc=true``).

        The one rule deciding it, used when a run plans its units (such a variant shares the
        default unit) and recorded with every row for the report: the complete options, builder
        defaults filled in, compare equal as JSON.  Numbers must be equal, not close:
        ``loss_weights: [0.333, 0.333, 0.333]`` is another model than the default ``1/3`` each,
        trained as its own unit and never labelled as the paper's configuration.

        Args:
            config: The variant's options.
            base: Options both sides share (a profile's scaled-down settings, ``--set`` values).
        """
        def canonical(options: dict[str, Any]) -> str | None:
            try:
                return json.dumps(json.loads(json.dumps({**self.options(), **(base or {}), **options})),
                                  sort_keys=True)
            except (TypeError, ValueError):  # an option that is not JSON: never the default
                return None

        mine = canonical(config)
        return mine is not None and mine == canonical({})


def register_model(name: str, *, modalities: tuple[str, ...] = MODALITIES, citation: str = "",
                   description: str = "", quick: dict[str, Any] | None = None,
                   paper_params: int | None = None, params_tolerance: float = 0.0, semantics_version: int = 1,
                   notes: str = "", presentation: Presentation | None = None):
    """Decorator registering a builder function under ``name`` in :data:`MODELS`."""
    bad = [m for m in modalities if m not in MODALITIES]
    if bad or not modalities:
        raise ValueError(f"The 'modalities' of model {name!r} must be a non-empty subset of {MODALITIES}. "
                         f"Got {modalities!r} instead.")

    def wrap(builder):
        MODELS.register(name, ModelMeta(name, builder, tuple(modalities), citation, description,
                                        dict(quick or {}), paper_params, params_tolerance, semantics_version,
                                        notes, presentation or Presentation()))
        return builder

    return wrap


def _coerce_entry(name: str, obj: Any) -> ModelMeta:
    """What an ``avbench.models`` entry point may name besides a module: a :class:`ModelMeta`, or
    a builder (a class or function taking ``num_classes, audio_dim, visual_dim`` and keyword-only
    options), registered as an audiovisual model under the entry point's name."""
    if isinstance(obj, ModelMeta):
        return obj
    if callable(obj):
        params = inspect.signature(obj).parameters
        if all(k in params for k in DIMENSIONS):
            return ModelMeta(name, obj, MODALITIES)
    raise RegistryError(f"it must name a module that registers models, an avbench.models.ModelMeta, or a builder "
                        f"taking num_classes, audio_dim and visual_dim. Got {obj!r} instead.")


MODELS.coerce = _coerce_entry


def get_model_meta(name: str) -> ModelMeta:
    return MODELS.get(name)


def check_config(name: str, config: dict[str, Any], dimensions: dict[str, int] | None = None) -> dict[str, Any]:
    """Refuses options the model does not take, naming the ones it does, and values its declared
    constraints refuse (the defaults filled in, as a rule may read another option).

    Args:
        name: Registry name.
        config: Options set.
        dimensions: ``num_classes``, ``audio_dim``, ``visual_dim`` when known; a rule that reads one
            that is not known yet (AuxFormer's heads dividing the audio width) waits for
            :func:`create_model`.
    """
    meta = get_model_meta(name)
    options = meta.options()
    unknown = sorted(set(config) - set(options))
    if unknown:
        raise ValidationError(f"Model {name!r} has no option {', '.join(map(repr, unknown))}."
                              f"{did_you_mean(unknown[0], options)} Its options: {', '.join(sorted(options)) or '(none)'}.")
    check_options({**options, **config}, meta.constraints(), f"model {name!r}", dimensions)
    return config


def create_model(name: str, *, num_classes: int, audio_dim: int, visual_dim: int, **config: Any) -> AVModel:
    """Builds a registered model.

    Args:
        name: Registry name (``avbench models list``).
        num_classes, audio_dim, visual_dim: Task and feature dimensions.
        **config: Model options (``avbench models show NAME`` lists them).

    Example:
        AuxFormer without positional encoding (Table 3), at the paper's feature sizes:

        >>> import torch
        >>> model = create_model("auxformer", num_classes=6, audio_dim=130, visual_dim=4096, pos_enc=False)
        >>> outputs = model(torch.randn(2, 50, 130), torch.randn(2, 24, 4096), torch.tensor([50, 31]),
        ...                 torch.tensor([24, 15]))
        >>> sorted(outputs), tuple(model.predict(outputs).shape)
        (['a', 'av', 'v'], (2, 6))
    """
    meta = get_model_meta(name)
    dimensions = dict(num_classes=num_classes, audio_dim=audio_dim, visual_dim=visual_dim)
    check_config(name, config, dimensions)
    model = meta.builder(**dimensions, **config)
    model.meta = meta
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def parameter_breakdown(model: nn.Module) -> dict[str, int]:
    """Trainable parameters per top-level block, in declaration order."""
    out = {name: count_parameters(child) for name, child in model.named_children()}
    own = sum(p.numel() for p in model.parameters(recurse=False) if p.requires_grad)
    if own:
        out["(own)"] = own
    return {k: v for k, v in out.items() if v}


def model_parameters(name: str, *, num_classes: int, audio_dim: int, visual_dim: int,
                     **config: Any) -> tuple[int, dict[str, int]]:
    """Parameter count and per-block breakdown, built on the meta device (no memory used)."""
    with torch.device("meta"):
        model = create_model(name, num_classes=num_classes, audio_dim=audio_dim, visual_dim=visual_dim, **config)
    return count_parameters(model), parameter_breakdown(model)
