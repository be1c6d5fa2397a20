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
    include: other protocols whose units and conditions this one adds (``paper``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from avbench.conditions import Condition, expand
from avbench.registry import PROTOCOLS
from avbench.training import REGIMES
from avbench.validation import ValidationError, check_choice

KEYS = {"name", "description", "reference", "regimes", "models", "variants", "conditions", "needs",
        "needs_regimes", "include", "summary"}


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
    include: tuple[str, ...] = ()
    summary: bool = False
    source: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "protocol") -> "Protocol":
        if not isinstance(d, dict) or "name" not in d:
            raise ValidationError(f"{where}: a protocol must be a mapping with at least a 'name'. Got {d!r}.")
        unknown = set(d) - KEYS
        if unknown:
            raise ValidationError(f"{where}: unknown protocol keys {sorted(unknown)}; known: {sorted(KEYS)}.")
        owner = f"protocol {d['name']!r}"
        regimes = tuple(check_choice(r, "regimes", owner, REGIMES) for r in d.get("regimes", ["optimized"]))
        variants = tuple(Variant(str(v["name"]), dict(v.get("config") or {})) for v in d.get("variants", [])) \
            or (DEFAULT_VARIANT,)
        conditions = tuple(c for spec in d.get("conditions", [{"kind": "full"}]) for c in expand(spec))
        nr = d.get("needs_regimes")
        return cls(name=str(d["name"]), description=str(d.get("description", "")).strip(),
                   reference=str(d.get("reference", "")), regimes=regimes,
                   models=tuple(d.get("models", ["auxformer"])), variants=variants, conditions=conditions,
                   needs=tuple(d.get("needs", [])),
                   needs_regimes=None if nr is None else tuple(check_choice(r, "needs_regimes", owner, REGIMES)
                                                               for r in nr),
                   include=tuple(d.get("include", [])), summary=bool(d.get("summary", False)), source=dict(d))

    @classmethod
    def from_yaml(cls, path: Path) -> "Protocol":
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ValidationError(f"{path}: cannot read protocol file: {exc}") from exc
        return cls.from_dict(data, where=str(path))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.source, sort_keys=False)


def get_protocol(name: str) -> Protocol:
    """A registered protocol by name (``Did you mean ...`` on a typo), or a path to a YAML file."""
    if name.endswith((".yaml", ".yml")) and Path(name).exists():
        return Protocol.from_yaml(Path(name))
    obj = PROTOCOLS.get(name)
    return obj if isinstance(obj, Protocol) else Protocol.from_dict(obj, where=f"protocol plugin {name!r}")


def register_directory(directory: Path) -> None:
    """Registers every ``*.yaml`` protocol of ``directory`` under its ``name``."""
    for path in sorted(Path(directory).glob("*.yaml")):
        p = Protocol.from_yaml(path)
        PROTOCOLS.register(p.name, p)
