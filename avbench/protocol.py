"""Protocols as data: which models, variants and regimes to train, which test conditions to score.

A protocol is a small YAML file (see ``protocols/*.yaml``) or an equivalent
dict registered through the ``avbench.protocols`` entry point.  The runner
trains each (model, variant, regime, seed) once and evaluates every condition
from that checkpoint; a protocol never knows a model's internals.

Keys:
    name, description, reference: identification (reference = paper section).
    regimes: training regimes to run (``standard``, ``optimized``).
    models: the default model set when ``--model`` is not given.
    variants: named config overrides, ``[{name: nopos, config: {pos_enc: false}}]``;
        default: one variant ``default`` with no overrides.
    conditions: test conditions, ``[{kind: mask, modality: audio, levels: [...]}]``.
    needs: models trained alongside for reference lines (e.g. baseline 4), default variant.
    needs_regimes: regimes for ``needs`` (default: the protocol's regimes).
    needs_conditions: conditions the ``needs`` models are scored under (default: the
        protocol's conditions); ``[{kind: full}]`` when only their clean score is the reference.
    include: one protocol (registered name or YAML path, relative to the including file) whose
        keys this one inherits and overrides, as in lm-evaluation-harness: ``include: masking``
        plus ``conditions: [...]`` is masking at other levels.
    group: other protocols run together with this one, each with its own units, conditions and
        manifest (``paper``, ``robustness``); a unit several of them need is trained once.
    summary: append the robustness summary (:mod:`avbench.robustness`) of this
        protocol's rows to the results table.
    train_shift_ms: train with random misalignment: each training clip has one modality
        (drawn at random) shifted by a uniform draw in [-train_shift_ms, +train_shift_ms]
        ms; the units get ``+train_shift=<ms>ms`` appended to their variant name, so they
        never collide with units trained without shifts.  Default 0 (off).

A variant whose resolved config equals the model's default config (e.g.
``{name: pos_enc=true, config: {pos_enc: true}}``) is the default model under
another name: the runner trains it once and reports it under each name.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from avbench.conditions import Condition, check_distinct, expand
from avbench.registry import PROTOCOLS
from avbench.training import REGIMES
from avbench.validation import ValidationError, check_choice, check_float, check_path_component, did_you_mean

KEYS = {"name", "description", "reference", "regimes", "models", "variants", "conditions", "needs",
        "needs_regimes", "needs_conditions", "include", "group", "summary", "train_shift_ms"}
VARIANT_KEYS = {"name", "config"}


@dataclass(frozen=True)
class Variant:
    name: str
    config: dict[str, Any] = field(default_factory=dict)


DEFAULT_VARIANT = Variant("default")


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str = ""
    reference: str = ""
    regimes: tuple[str, ...] = ("optimized",)
    models: tuple[str, ...] = ("auxformer",)
    variants: tuple[Variant, ...] = (DEFAULT_VARIANT,)
    conditions: tuple[Condition, ...] = (Condition("full"),)
    needs: tuple[str, ...] = ()
    needs_regimes: tuple[str, ...] | None = None
    group: tuple[str, ...] = ()
    summary: bool = False
    needs_conditions: tuple[Condition, ...] | None = None
    train_shift_ms: float = 0.0
    source: dict[str, Any] = field(default_factory=dict, compare=False)
    parts: tuple[str, ...] = ()  # a union's protocols (``--protocol`` repeated): ``--model`` applies to each

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "protocol", base_dir: Path | None = None) -> "Protocol":
        """Validates a protocol mapping, first resolving its ``include`` (``base_dir``: where a
        relative included path is looked for)."""
        if not isinstance(d, dict) or "name" not in d:
            raise ValidationError(f"{where}: a protocol must be a mapping with at least a 'name'. Got {d!r}.")
        d = inherit(d, where, base_dir)
        unknown = sorted(set(d) - KEYS)
        if unknown:
            raise ValidationError(f"{where}: unknown protocol keys {unknown}.{did_you_mean(unknown[0], KEYS)} "
                                  f"Known: {sorted(KEYS)}.")
        owner = f"protocol {d['name']!r}"
        check_path_component(d["name"], "name", owner)  # it names the protocol's manifest file
        for key in ("models", "needs", "group", "regimes", "needs_regimes", "conditions", "needs_conditions"):
            if d.get(key) is not None and not isinstance(d[key], list):
                raise ValidationError(f"The {key!r} parameter of {owner} must be a list. Got {d[key]!r} instead.")
        regimes = tuple(check_choice(r, "regimes", owner, REGIMES) for r in d.get("regimes", ["optimized"]))
        variants = _variants(d.get("variants") or [], owner) or (DEFAULT_VARIANT,)
        conditions = tuple(c for spec in d.get("conditions", [{"kind": "full"}]) for c in expand(spec))
        check_distinct(conditions, owner)
        nc = d.get("needs_conditions")
        needs_conditions = None if nc is None else tuple(c for spec in nc for c in expand(spec))
        check_distinct(needs_conditions or (), owner)
        shift = check_float(d.get("train_shift_ms", 0.0), "train_shift_ms", owner, low=0.0)
        nr = d.get("needs_regimes")
        return cls(name=str(d["name"]), description=str(d.get("description", "")).strip(),
                   reference=str(d.get("reference", "")), regimes=regimes,
                   models=tuple(d.get("models", ["auxformer"])), variants=variants, conditions=conditions,
                   needs=tuple(d.get("needs", [])),
                   needs_regimes=None if nr is None else tuple(check_choice(r, "needs_regimes", owner, REGIMES)
                                                               for r in nr),
                   group=tuple(d.get("group", [])), summary=bool(d.get("summary", False)),
                   needs_conditions=needs_conditions, train_shift_ms=shift, source=dict(d))

    @classmethod
    def from_yaml(cls, path: Path) -> "Protocol":
        try:
            data = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise ValidationError(f"{path}: protocol file not found.") from None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ValidationError(f"{path}: cannot be read as a YAML protocol file ({exc}).") from None
        return cls.from_dict(data, where=str(path), base_dir=Path(path).parent)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.source, sort_keys=False)


def inherit(d: dict[str, Any], where: str, base_dir: Path | None = None) -> dict[str, Any]:
    """``d`` with its ``include`` resolved: the included protocol's keys, overridden by ``d``'s.

    ``include`` names one protocol (lm-evaluation-harness's meaning); the included protocol's own
    ``include`` was resolved when it was read, and its ``name`` and ``group`` are not inherited.
    """
    if "include" not in d:
        return d
    parent = d["include"]
    if isinstance(parent, list):
        raise ValidationError(f"The 'include' parameter of protocol {d['name']!r} names one protocol to inherit "
                              f"from and override. Got the list {parent!r} instead; to run several protocols "
                              f"together, name them under 'group:'.")
    if not isinstance(parent, str) or not parent:
        raise ValidationError(f"The 'include' parameter of protocol {d['name']!r} must be a protocol name or a YAML "
                              f"path. Got {parent!r} instead.")
    if base_dir is not None and parent.endswith((".yaml", ".yml")) and (base_dir / parent).exists():
        parent = str(base_dir / parent)
    if parent == d["name"]:
        raise ValidationError(f"{where}: protocol {d['name']!r} includes itself.")
    inherited = {k: v for k, v in get_protocol(parent).source.items() if k not in ("name", "group")}
    return inherited | {k: v for k, v in d.items() if k != "include"}


def members(protocol: Protocol) -> list[Protocol]:
    """The protocol and, depth first, every protocol of its ``group`` (each once); those that
    train and score something."""
    seen: dict[str, Protocol] = {}

    def visit(p: Protocol) -> None:
        if p.name in seen:
            return
        seen[p.name] = p
        for name in p.group:
            visit(get_protocol(name))

    visit(protocol)
    found = [p for p in seen.values() if p.conditions and (p.regimes or p.needs)]
    # a unit serving several of them is scored under the union of their conditions
    check_distinct((c for p in found for c in (*p.conditions, *(p.needs_conditions or ()))),
                   f"the protocols {', '.join(repr(p.name) for p in found)}" if len(found) > 1 else
                   f"protocol {protocol.name!r}")
    return found


def resolve(protocol: str | Protocol | Sequence[str]) -> Protocol:
    """The protocol a run is asked for: a name, a YAML path or a :class:`Protocol`, or several names
    (``--protocol`` repeated), run together as their union.

    A union works as ``group:`` does (each unit trained once, scored under every condition its
    protocols ask for, each protocol with its own manifest and rows), and ``--model`` replaces the
    model set of each protocol named, as it does for a single one.  A name given twice counts once.
    """
    if isinstance(protocol, Protocol):
        return protocol
    if isinstance(protocol, str):
        return get_protocol(protocol)
    names = list(dict.fromkeys(str(p) for p in protocol))
    if not names:
        raise ValidationError("The 'protocol' parameter of avbench run must name at least one protocol. Got none.")
    if len(names) == 1:
        return get_protocol(names[0])
    parts = tuple(get_protocol(n).name for n in names)
    name = "+".join(parts)
    return Protocol(name, description=f"The union of {', '.join(parts)}.", regimes=(), conditions=(),
                    group=tuple(names), parts=parts, source={"name": name, "group": names})


def models_of(top: Protocol, member: Protocol, models: Sequence[str] | None) -> tuple[str, ...]:
    """The models ``member``, one of ``members(top)``, trains: ``models`` (``--model``) for the
    protocol the user named (each protocol of a union) and for members that name none, else the
    member's own."""
    takes = member is top or member.name in top.parts or not member.models
    return tuple(models) if models and takes else member.models


def options_for(options: dict[str, Any] | None, model: str) -> dict[str, Any]:
    """The ``--set`` options that apply to ``model``: ``key`` ones apply to every model, ``MODEL.key``
    ones to that model only (and win over a ``key`` one)."""
    options = options or {}
    general = {k: v for k, v in options.items() if "." not in k}
    own = {k.rsplit(".", 1)[1]: v for k, v in options.items() if "." in k and k.rsplit(".", 1)[0] == model}
    return general | own


def check_model_options(options: dict[str, Any] | None, protocol: Protocol, models: list[str] | None) -> None:
    """Refuses a ``MODEL.key`` option whose model the run does not train with its options (it would
    be ignored), suggesting close names."""
    configured = sorted({m for p in members(protocol) for m in models_of(protocol, p, models)})
    for key in options or {}:
        model = key.rsplit(".", 1)[0] if "." in key else None
        if model is not None and model not in configured:
            raise ValidationError(f"The 'set' parameter of avbench run must name, before the '.', a model this run "
                                  f"trains ({', '.join(configured)}). Got {key!r} instead.{did_you_mean(model, configured)}",
                                  param="set", owner="avbench run")


def with_options(protocol: Protocol, options: dict[str, Any] | None, model: str | None = None) -> tuple[Variant, ...]:
    """The protocol's variants with ``--set`` options applied on top, each renamed after them
    (``pos_enc=false+heads=2``; the default variant becomes ``heads=2``).

    Args:
        protocol: Whose variants.
        options: ``key`` and ``MODEL.key`` options (:func:`options_for`).
        model: The model they are for; None: ``options`` are taken as they are.
    """
    if model is not None:
        options = options_for(options, model)
    if not options:
        return protocol.variants
    tag = ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(options.items()))
    return tuple(Variant(tag if v.name == "default" else f"{v.name}+{tag}", {**v.config, **options})
                 for v in protocol.variants)


def _variants(specs: Any, owner: str) -> tuple[Variant, ...]:
    if not isinstance(specs, list):
        raise ValidationError(f"The 'variants' parameter of {owner} must be a list of {{name, config}} mappings. "
                              f"Got {specs!r} instead.")
    out: list[Variant] = []
    for v in specs:
        if not isinstance(v, dict) or "name" not in v or set(v) - VARIANT_KEYS \
                or not isinstance(v.get("config") or {}, dict):
            extra = sorted(map(str, set(v) - VARIANT_KEYS)) if isinstance(v, dict) else []
            hint = did_you_mean(extra[0], VARIANT_KEYS) if extra else ""
            raise ValidationError(f"Each variant of {owner} must be a mapping with a 'name' and an optional "
                                  f"'config' mapping. Got {v!r} instead.{hint}")
        out.append(Variant(check_path_component(v["name"], "variants", owner), dict(v.get("config") or {})))
    names = [v.name for v in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValidationError(f"The variants of {owner} must have distinct names; repeated: {', '.join(dupes)}.")
    return tuple(out)


def get_protocol(name: str) -> Protocol:
    """A registered protocol by name (``Did you mean ...`` on a typo), or a path to a YAML file.

    A registered entry (built-in YAML or ``avbench.protocols`` entry point) may be a
    :class:`Protocol`, a dict in the YAML format, or a callable returning either.
    """
    if name.endswith((".yaml", ".yml")) and Path(name).exists():
        return Protocol.from_yaml(Path(name))
    obj = PROTOCOLS.get(name)
    if callable(obj) and not isinstance(obj, (Protocol, dict)):
        obj = obj()
    return obj if isinstance(obj, Protocol) else Protocol.from_dict(obj, where=f"protocol plugin {name!r}")


def register_directory(directory: Path) -> None:
    """Registers every ``*.yaml`` protocol of ``directory`` under its ``name``.

    Each is built when first asked for (from the YAML read here), so a protocol may ``include`` one
    registered after it.
    """
    for path in sorted(Path(directory).glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        name = data.get("name") if isinstance(data, dict) else None
        PROTOCOLS.register(str(name or path.stem), functools.cache(
            lambda data=data, path=path: Protocol.from_dict(data, where=str(path), base_dir=path.parent)))
