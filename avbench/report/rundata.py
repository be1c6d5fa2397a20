"""Everything a report needs from a run directory, read once: the tidy table, manifests, provenance.

A report reads only what a run wrote (``results.csv``, ``protocols/*.json``, the units'
``train.json``) and never trains.  A report also saves a ``data/`` folder with the table,
the manifests and a ``provenance.json`` digest, which is itself a valid input: a committed
report can be rebuilt from its own ``data/`` without the (large) unit directories.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from avbench.provenance import describe_machine
from avbench.report.confidences import load as load_confidences
from avbench.report.histories import load as load_histories
from avbench.robustness import family_levels
from avbench.results import (COLUMNS, PRETRAINED, WEIGHTS_VARIANT_PREFIX, corpus_id, load_results, parse_corpus_id,
                             read_json)

KEY = [c for c in COLUMNS if c not in ("protocol", "value")]
PERFORMANCE_METRICS = ("micro_f1", "macro_f1", "accuracy")
#: The conditions with an intact or a clipped modality: one cell each in the ranking, the Bayesian comparison and
#: the calibration table, and the conditions whose per-clip confidences a report keeps.
CELL_CONDITIONS = ("full", "clip_audio", "clip_visual")
#: How the corpus names of the data layer read in a paper.
CORPUS_LABELS = {"crema-d": "CREMA-D", "cremad": "CREMA-D", "msp-improv": "MSP-IMPROV", "mspimprov": "MSP-IMPROV"}


@dataclass
class Corpus:
    """One corpus of a run, as its protocol manifests describe it."""

    id: str                 # the ``corpus`` value of the tidy table (name-checksum8)
    name: str
    checksum: str | None
    synthetic: bool | None  # None: no manifest says (a bare CSV)

    @property
    def label(self) -> str:
        base = CORPUS_LABELS.get(self.name.lower(), self.name)
        return f"{base} (synthetic)" if self.synthetic and "synth" not in base.lower() else base


@dataclass
class RunData:
    """A run as a report sees it.

    Attributes:
        source: The directory (or CSV) read.
        raw: The tidy table as written (one row per protocol that asked for a score).
        table: The same without the per-protocol copies: one row per (corpus, model, variant,
            regime, condition, level, seed, metric, level set); ``protocol`` keeps the first protocol and
            ``levels`` holds the level set (:func:`level_sets`).
        manifests: ``protocols/<name>@<corpus>.json`` by file stem, without their entry lists.
        units: Per trained unit (corpus, model, variant, regime, seed) its directory (``dir``, relative to
            the run directory) and the profile, provenance and history its ``train.json`` recorded (empty when
            the unit directories are not there).
        notes: Problems found while reading (conflicting duplicate scores, unreadable records).
    """

    source: Path
    raw: pd.DataFrame
    table: pd.DataFrame
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)
    units: list[dict[str, Any]] = field(default_factory=list)
    saved_provenance: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ corpus and protocols
    @cached_property
    def corpora(self) -> list[Corpus]:
        seen: dict[str, Corpus] = {}
        for stem, m in self.manifests.items():
            c = m.get("corpus") or {}
            if c.get("name"):  # the file is <protocol>@<corpus id>.json
                cid = stem.partition("@")[2] or corpus_id(str(c["name"]), str(c.get("checksum") or ""))
                seen.setdefault(cid, Corpus(cid, str(c["name"]), c.get("checksum"),
                                            None if c.get("synthetic") is None else bool(c["synthetic"])))
        for cid in self.raw["corpus"].dropna().astype(str).unique():
            if cid not in seen:  # no manifest (a bare CSV, or a corpus whose manifest a later run replaced)
                name, prefix = parse_corpus_id(cid)  # the data layer names synthetic stores "synthetic-..."
                seen[cid] = Corpus(cid, name, prefix, True if "synthetic" in cid.lower() else None)
        present = set(self.raw["corpus"].astype(str).unique())
        return [c for c in seen.values() if c.id in present] or list(seen.values())

    def corpus(self, cid: str) -> Corpus:
        return next((c for c in self.corpora if c.id == cid), Corpus(cid, cid, None, None))

    @property
    def synthetic(self) -> bool:
        """True if any corpus of the run is (or, lacking manifests, looks) synthetic."""
        return any(c.synthetic for c in self.corpora)

    @property
    def protocols(self) -> list[str]:
        named = {_protocol_name(stem, m) for stem, m in self.manifests.items()}
        return sorted(named | set(self.raw["protocol"].dropna().astype(str)))

    def definition(self, protocol: str) -> dict[str, Any] | None:
        return next((m["definition"] for stem, m in self.manifests.items()
                     if _protocol_name(stem, m) == protocol and m.get("definition")), None)

    def find_protocols(self, config_key: str) -> list[str]:
        """Protocols of this run whose variants set ``config_key`` (e.g. ``pos_enc``)."""
        out = set()
        for stem, m in self.manifests.items():
            variants = (m.get("definition") or {}).get("variants") or []
            if any(config_key in (v.get("config") or {}) for v in variants):
                out.add(_protocol_name(stem, m))
        return sorted(out)

    @cached_property
    def histories(self) -> pd.DataFrame:
        """Each unit's losses and dev scores per epoch (:mod:`avbench.report.histories`)."""
        return load_histories(self.units, self.root)

    @cached_property
    def confidences(self) -> pd.DataFrame:
        """Per-clip confidences with full and clipped input (:mod:`avbench.report.confidences`)."""
        return _given_weights_as_default(load_confidences(self.root, self.units, CELL_CONDITIONS), [])

    @property
    def root(self) -> Path:
        """The run directory (or ``data/`` folder) read."""
        return self.source if self.source.is_dir() else self.source.parent

    # ------------------------------------------------------------------ provenance
    @property
    def profiles(self) -> list[str]:
        names = [m.get("profile") for m in self.manifests.values() if m.get("profile")]
        names += [u["profile"] for u in self.units if u.get("profile")]
        return sorted(set(names)) or list(self.saved_provenance.get("profiles", []))

    @property
    def seeds(self) -> int:
        """Number of trials in the table (distinct seeds of the performance rows)."""
        perf = self.table[self.table["metric"].isin(PERFORMANCE_METRICS)]
        return int(perf["seed"].nunique()) if not perf.empty else int(self.table["seed"].nunique())

    @cached_property
    def provenance(self) -> dict[str, Any]:
        """A digest: versions, git revisions, machines (with how many units each trained)."""
        if not self.units and self.saved_provenance:
            return dict(self.saved_provenance)  # a report's data/ folder: the digest made from the units
        records = [u["provenance"] for u in self.units if u.get("provenance")]
        if not records:  # no unit records: the manifests say where the run was last invoked
            records = [m["provenance"] for m in self.manifests.values() if m.get("provenance")]

        def values(key: str) -> list[str]:
            return sorted({str(r.get(key)) for r in records if r.get(key) is not None})

        machines = Counter(describe_machine(r.get("machine") or {}) for r in records)
        return {
            "corpora": [{"id": c.id, "name": c.name, "checksum": c.checksum, "synthetic": c.synthetic}
                        for c in self.corpora],
            "profiles": self.profiles,
            "seeds": self.seeds,
            "protocols": self.protocols,
            **{key: values(key) for key in ("avbench", "git_revision", "torch", "python")},
            "machines": [{"machine": k, "units": v} for k, v in machines.most_common()],
            "units_read": len(self.units),
        }


def _protocol_name(stem: str, manifest: dict[str, Any]) -> str:
    """A manifest file is ``<protocol>@<corpus>.json``; its content names the protocol."""
    return str(manifest.get("protocol", stem.split("@")[0]))


def level_sets(raw: pd.DataFrame) -> pd.Series:
    """Each row's level set: the levels its condition family takes under its protocol, as
    :func:`format_levels` reads them back (``"0.1,0.2"``; ``""`` for conditions without levels).

    An AUC is a mean over a family's levels, so AUCs over different level sets are different
    quantities: rows keep their level set, protocols with identical sets share them, and aggregates
    group by it (:func:`_dedupe`, Table R1, the curve figures)."""
    sets = family_levels(raw).map(lambda levels: ",".join(f"{v:.10g}" for v in levels))
    key = pd.MultiIndex.from_frame(raw[["protocol", "condition"]].astype(str))
    sets.index = pd.MultiIndex.from_tuples([tuple(map(str, k)) for k in sets.index], names=["protocol", "condition"])
    found = sets.reindex(key).to_numpy(dtype=object)
    return pd.Series(np.where(pd.isna(found), "", found), index=raw.index, name="levels")


def format_levels(levels: str, unit: str = "") -> str:
    """How a caption names a level set: ``0.1-0.9 in steps of 0.1`` for an even grid of four or more,
    else the levels listed (``0.3, 0.7``), with the kind's unit when given."""
    values = [float(v) for v in str(levels).split(",") if v]
    if not values:
        return ""
    steps = np.diff(values)
    if len(values) >= 4 and np.allclose(steps, steps[0], rtol=1e-6, atol=1e-9):
        text = f"{values[0]:g} to {values[-1]:g} in steps of {steps[0]:.6g}"
    else:
        text = ", ".join(f"{v:g}" for v in values)
    return f"{text} ({unit.replace(' (', '; ').rstrip(')')})" if unit else text


def _given_weights_as_default(raw: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Units given their weights (regime ``pretrained``, variant ``weights-<sha256[:12]>``) shown as their model's
    default variant, so every artifact that shows default variants shows them (under the regime
    ``pretrained``), when a model was given one file per corpus; a model given several keeps their variant
    names, and a note says so."""
    variant = raw["variant"].astype(str)
    given = (raw["regime"].astype(str) == PRETRAINED) & variant.str.startswith(WEIGHTS_VARIANT_PREFIX)
    if not given.any():
        return raw
    files = raw[given].groupby(["corpus", "model"], observed=True)["variant"].nunique()
    several = files[files > 1]
    for corpus, model in several.index:
        notes.append(f"{model} was given {several[(corpus, model)]} different weight files on {corpus}; the report "
                     f"shows each as its own variant ({WEIGHTS_VARIANT_PREFIX}<sha256>), none as the default.")
    one = given & ~raw.set_index(["corpus", "model"]).index.isin(several.index)
    return raw.assign(variant=variant.where(~one, "default"))


def _dedupe(raw: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """One row per score and level set: a unit scored for several protocols appears once per protocol in
    ``raw``; its copies merge where the protocols' level sets of its condition family are the same."""
    t = raw.copy()
    t["levels"] = level_sets(raw)
    t["_level"] = t["level"].astype(float).round(9)
    key = [c if c != "level" else "_level" for c in KEY] + ["levels"]
    agg = t.groupby(key, dropna=False, observed=True)["value"].agg(["max", "min"])
    bad = agg[(agg["max"] - agg["min"]).abs() > 1e-12]
    if len(bad):
        example = dict(zip(key, bad.index[0]))
        example.pop("_level", None)
        notes.append(f"{len(bad)} score(s) are recorded with different values under different protocols "
                     f"(e.g. {example}); the first protocol's value is used. This happens when runs with "
                     f"different profiles share one directory.")
    t = t.drop_duplicates(subset=key, keep="first").drop(columns="_level")
    return t.reset_index(drop=True)


def load_run(path: str | Path) -> RunData:
    """Reads a run directory (or a report's ``data/`` folder, or a bare ``results.csv``).

    Raises:
        FileNotFoundError: No results table at ``path``.
    """
    path = Path(path)
    notes: list[str] = []
    raw = _given_weights_as_default(load_results(path), notes)
    for col in ("corpus", "model", "variant", "regime", "protocol", "condition", "metric"):
        raw[col] = raw[col].astype(str).astype("category")  # categorical: fast repeated selections
    root = path if path.is_dir() else path.parent
    manifests: dict[str, dict[str, Any]] = {}
    units: list[dict[str, Any]] = []
    train_paths: dict[str, dict[str, Any]] = {}
    for file in sorted((root / "protocols").glob("*.json")):
        try:
            m = read_json(file)
        except ValueError as exc:
            notes.append(str(exc))
            continue
        for entry in m.get("train", []):
            train_paths.setdefault(entry["train"], entry["unit"])
        manifests[file.stem] = {k: v for k, v in m.items() if k not in ("entries", "train")}
    for rel, unit in train_paths.items():
        file = root / rel
        if not file.exists():
            continue
        try:
            rec = read_json(file)
        except (OSError, ValueError) as exc:  # read_json names the file in its ValueError
            notes.append(f"{file}: unreadable ({exc})")
            continue
        units.append({**unit, "dir": str(Path(rel).parent), "profile": (rec.get("profile") or {}).get("name"),
                      "provenance": rec.get("provenance") or {}, "history": rec.get("history") or []})
    saved = {}
    if (root / "provenance.json").exists():
        try:
            saved = read_json(root / "provenance.json")
        except ValueError as exc:
            notes.append(str(exc))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        table = _dedupe(raw, notes)
    return RunData(source=path, raw=raw, table=table, manifests=manifests, units=units,
                   saved_provenance=saved, notes=notes)
