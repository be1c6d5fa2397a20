"""Run records on disk, typed, and the tidy results table built from them.

Layout of a run directory (``--out``)::

    units/<corpus>/<profile>/<model>/<variant>/<regime>/seed-NN/
        identity.json    the unit's key (:class:`UnitKey`, with semantics versions) while it trains,
                         checked on resume, removed when done
        train_state.pt   per-epoch training state (resume point), removed when done
        normalization.npz  the trial's z-normalisation statistics (training partition) the unit used
        model.pt         the dev-selected weights
        train.json       :class:`TrainRecord`: key, profile, corpus, split, normalisation summary,
                         history, timings, parameter count, provenance
        evals/<condition>@<level>.json   :class:`EvalRecord`: metrics, per-clip predictions, timing
        evals/<condition>@<level>.npz    per-clip class probabilities (``clip_id``, ``probs``) of an
                         ``ok`` evaluation, for calibration (written after the record)
        record.json      train.json + every evaluation (one record per unit)
    masks/<corpus>/seed-NN/<condition>@<level>.npz   the seeded masks, shared by all models
    protocols/<protocol>@<corpus>.json   :class:`ProtocolManifest`: which units (under which
                     variant names) and conditions a protocol asked for
    results.csv      the tidy table: corpus, model, variant, regime, protocol, condition, level,
                     seed, metric, value, train_shift_ms, is_default

Every record carries ``schema_version`` (:data:`SCHEMA_VERSION`); records written before it
existed (version 0) are read by the same ``from_json`` methods, which fill what they lacked from
the records around them (see :func:`upgrade_table`).  Every file is written atomically
(temporary file + rename), so a killed run leaves either the old file or the new one, never half
of one.  Reports read ``results.csv`` (or rebuild it with :func:`collect`) and never retrain.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from avbench.atomic import atomic_path
from avbench.validation import DataError

#: The regime of a unit given its weights instead of trained (``avbench run --weights``, :mod:`avbench.pretrained`).
PRETRAINED = "pretrained"
#: The variant name of such a unit is this prefix and the first 12 hex digits of the weights' sha256.
WEIGHTS_VARIANT_PREFIX = "weights-"
#: Version of the record formats below; 0 = records written before versions were recorded.
SCHEMA_VERSION = 1
#: Version of :class:`EvalRecord`: 2 = an ``ok`` evaluation also keeps its per-clip probabilities
#: (``evals/<key>.npz``) and records ``ece``, ``brier`` and ``nll``.  An older ``ok`` evaluation is
#: rescored from the unit's kept ``model.pt`` (its predictions must come out the same); the unit's
#: semantics version, which would retrain it, does not change.
EVAL_SCHEMA_VERSION = 2
#: The tidy table's columns as the README documents them ...
COLUMNS = ["corpus", "model", "variant", "regime", "protocol", "condition", "level", "seed", "metric", "value"]
#: ... and the unit facts added to every row, so that no reader parses them out of ``variant``:
#: the training shift (ms, 0 = none) and whether the unit is the model's default configuration.
UNIT_COLUMNS = ["train_shift_ms", "is_default"]
TIDY_COLUMNS = COLUMNS + UNIT_COLUMNS


def canonical_config(config: Mapping[str, Any]) -> str:
    """A model config as sorted JSON: equal for equal options, whether a list came as a tuple (a profile)
    or as a list (a record read back)."""
    return json.dumps(dict(config), sort_keys=True)


def corpus_id(name: str, checksum: str, splits_id: str = "") -> str:
    """The ``corpus`` value of the tidy table: ``<store name>-<checksum[:8]>``, plus ``+splits-<id>``
    for named partitions (``--splits``).  Protocol manifests are named ``<protocol>@<corpus id>.json``."""
    base = f"{name}-{checksum[:8]}"
    return f"{base}+splits-{splits_id}" if splits_id else base


def parse_corpus_id(cid: str) -> tuple[str, str | None]:
    """The store name and checksum prefix of a :func:`corpus_id` (``(cid, None)`` for any other string).

    >>> parse_corpus_id("crema-d-0123abcd+splits-pub-1a2b3c4d"), parse_corpus_id("mine")
    (('crema-d', '0123abcd'), ('mine', None))
    """
    m = re.fullmatch(r"(.+)-([0-9a-f]{8})", cid.partition("+splits-")[0])
    return (m.group(1), m.group(2)) if m else (cid, None)


def shift_suffix(train_shift_ms: float) -> str:
    """What a training shift appends to a unit's variant (and directory) name: ``+train_shift=500ms``.

    The name keeps shift-trained units apart on disk and in the table's ``variant`` column; readers
    take the shift from ``train_shift_ms`` instead of parsing the name.
    """
    return f"+train_shift={train_shift_ms:g}ms" if train_shift_ms else ""


@dataclass(frozen=True, eq=False)
class UnitKey:
    """One trained model: the key of a checkpoint and of its records.

    Equality and hashing follow the unit's identity (every field but ``label``), with ``config``
    compared as canonical JSON, so two protocols asking for the same unit share it.

    Attributes:
        corpus: The corpus id of the tidy table: ``<store name>-<checksum[:8]>``, plus
            ``+splits-<hash>`` for named partitions (the store's name and full checksum are in
            :class:`TrainRecord` ``corpus``).
        profile: Profile name (``quick``, ``paper``, ``smoke``).
        model, variant, regime, seed: As in the tidy table; ``variant`` ends with
            :func:`shift_suffix` for shift-trained units.
        config: The complete model options the unit was built with (profile's and variant's).
        train_shift_ms: Random misalignment in training (0: none).
        semantics: Model and training semantics versions (``units.unit_semantics``): a unit
            trained by code of other semantics is retrained, never reused.
        is_default: The unit is the model's default configuration (``ModelMeta.is_default``),
            decided once when the unit is planned.
        label: The name a protocol gives this unit when it differs from ``variant`` (the default
            model under another name, e.g. ``pos_enc=true``); not part of the identity.
    """

    corpus: str
    profile: str
    model: str
    variant: str
    config: Mapping[str, Any]
    regime: str
    seed: int
    train_shift_ms: float = 0.0
    semantics: str = ""
    is_default: bool = False
    label: str = ""

    def __post_init__(self):
        # a copy, so that the key cannot change under a caller's feet; JSON text is accepted too
        config = json.loads(self.config) if isinstance(self.config, str) else dict(self.config)
        object.__setattr__(self, "config", config)

    def _identity(self) -> tuple:
        return (self.corpus, self.profile, self.model, self.variant, canonical_config(self.config), self.regime,
                self.seed, float(self.train_shift_ms), self.semantics)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnitKey) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    @property
    def title(self) -> str:
        """How progress lines and messages name the unit: ``model/variant/regime/seed N``."""
        return f"{self.model}/{self.variant}/{self.regime}/seed {self.seed}"

    @property
    def path(self) -> Path:
        return Path("units", self.corpus, self.profile, self.model, self.variant, self.regime, f"seed-{self.seed:02d}")

    def key(self) -> dict[str, Any]:
        """The unit as a row of the tidy table names it (under the protocol's variant name)."""
        return {"corpus": self.corpus, "model": self.model, "variant": self.label or self.variant,
                "regime": self.regime, "seed": self.seed, "train_shift_ms": float(self.train_shift_ms),
                "is_default": bool(self.is_default)}

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "label"}
        return out | {"config": dict(self.config), "train_shift_ms": float(self.train_shift_ms)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "UnitKey":
        """Reads a key; version 0 keys lack ``is_default`` (read as False: the runner's planning and
        :func:`upgrade_table` decide it for rows)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _record_fields(cls, d: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


@dataclass
class TrainRecord:
    """``train.json``: what training one unit produced and where it ran.

    ``weights`` is set for a unit that was not trained but given its weights (``avbench run
    --weights``; regime ``pretrained``): their file, sha256, format and the streams normalised; its
    ``history`` is then empty.  Trained units do not write the key.
    """

    unit: UnitKey
    profile: dict[str, Any]
    corpus: dict[str, Any]
    split: dict[str, Any]
    normalization: dict[str, Any]
    history: list[dict[str, Any]]
    best_epoch: int
    train_metrics: dict[str, float]
    provenance: dict[str, Any]
    schema_version: int = SCHEMA_VERSION
    weights: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self) | {"unit": self.unit.to_json()}
        if self.weights is None:
            del out["weights"]
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "TrainRecord":
        return cls(**(_record_fields(cls, d) | {"unit": UnitKey.from_json(d["unit"]),
                                               "schema_version": int(d.get("schema_version", 0))}))


@dataclass
class EvalRecord:
    """``evals/<condition>@<level>.json``: one unit scored under one condition.

    ``status`` is ``ok`` (``metrics``, ``seconds``, per-clip ``predictions``; from version 2 the
    class probabilities in a side file, see :data:`EVAL_SCHEMA_VERSION`) or ``not_applicable``
    (``reason``: the condition removes every modality the model reads).
    """

    condition: str
    level: float | None
    unit: dict[str, Any]   # the unit's table key (:meth:`UnitKey.key`, under its own variant name)
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    predictions: dict[str, list] | None = None
    reason: str = ""
    schema_version: int = EVAL_SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.predictions is None:
            del out["predictions"]
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "EvalRecord":
        return cls(**(_record_fields(cls, d) | {"schema_version": int(d.get("schema_version", 0))}))


@dataclass
class ManifestEntry:
    """One score (or training record) a protocol asked for: the unit's table key and the file."""

    unit: dict[str, Any]
    path: str


@dataclass
class ProtocolManifest:
    """``protocols/<protocol>@<corpus>.json``: which units and conditions a protocol asked for.

    Results accumulate: :meth:`merge` keeps the entries of earlier invocations, so a rerun with
    fewer ``--model``, fewer ``--seeds`` or another ``--set`` variant adds its units instead of
    replacing the list, and ``results.csv`` and the report keep every finished unit.
    """

    protocol: str
    definition: dict[str, Any] = field(default_factory=dict)   # the protocol as written (YAML mapping)
    profile: str = ""
    seeds: int = 0
    corpus: dict[str, Any] = field(default_factory=dict)       # name, checksum, synthetic, path
    provenance: dict[str, Any] = field(default_factory=dict)   # where the protocol was last run
    entries: list[ManifestEntry] = field(default_factory=list)   # evaluations
    train: list[ManifestEntry] = field(default_factory=list)     # training records
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["entries"] = [{"unit": e.unit, "eval": e.path} for e in self.entries]
        out["train"] = [{"unit": e.unit, "train": e.path} for e in self.train]
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ProtocolManifest":
        """Reads a manifest; a version 0 entry lacks ``train_shift_ms`` and ``is_default``, which
        are filled from the protocol's definition (:func:`unit_facts`)."""
        m = cls(**(_record_fields(cls, d) | {"entries": [], "train": [],
                                            "schema_version": int(d.get("schema_version", 0))}))
        definition = m.definition or {}
        m.entries = [ManifestEntry(_with_unit_facts(e["unit"], definition), e["eval"]) for e in d.get("entries", [])]
        m.train = [ManifestEntry(_with_unit_facts(e["unit"], definition), e["train"]) for e in d.get("train", [])]
        return m

    def merge(self, old: "ProtocolManifest") -> "ProtocolManifest":
        """This manifest plus the entries of ``old`` it does not have (older entries first)."""
        def merged(new: list[ManifestEntry], before: list[ManifestEntry]) -> list[ManifestEntry]:
            seen = {_entry_id(e) for e in new}
            return [e for e in before if _entry_id(e) not in seen] + new

        return ProtocolManifest(**{**self.__dict__, "entries": merged(self.entries, old.entries),
                                   "train": merged(self.train, old.train), "seeds": max(self.seeds, old.seeds)})


def _entry_id(e: ManifestEntry) -> str:
    return json.dumps([e.unit, e.path], sort_keys=True)


def unit_facts(variant: str, model: str, definition: Mapping[str, Any]) -> dict[str, Any]:
    """``train_shift_ms`` and ``is_default`` of a version 0 row, from its protocol's definition.

    Version 0 recorded neither: the shift is the protocol's ``train_shift_ms`` and the variant is
    the default configuration when it is named ``default`` or when its config is the model's
    default (``ModelMeta.is_default``; a model not installed here counts as not default).
    """
    shift = float(definition.get("train_shift_ms") or 0.0)
    name = variant.removesuffix(shift_suffix(shift))
    if name == "default":
        return {"train_shift_ms": shift, "is_default": True}
    config = next((dict(v.get("config") or {}) for v in definition.get("variants") or [] if v.get("name") == name),
                  None)
    try:
        from avbench.models import get_model_meta

        default = config is not None and get_model_meta(model).is_default(config)
    except Exception:  # a plugin model not installed where the run is read
        default = False
    return {"train_shift_ms": shift, "is_default": default}


def _with_unit_facts(unit: dict[str, Any], definition: Mapping[str, Any]) -> dict[str, Any]:
    if all(c in unit for c in UNIT_COLUMNS):
        return dict(unit)
    return unit_facts(str(unit["variant"]), str(unit["model"]), definition) | dict(unit)


def read_manifest(path: Path) -> ProtocolManifest:
    return ProtocolManifest.from_json(read_json(path))


def read_manifests(out: Path) -> list[ProtocolManifest]:
    """Every protocol manifest of a run directory (or a report's ``data/`` folder)."""
    return [read_manifest(p) for p in sorted((Path(out) / "protocols").glob("*.json"))]


def write_json(path: Path, obj: Any) -> None:
    """Atomic JSON write."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, default=_jsonable))


def write_table(path: Path, table: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    with atomic_path(path, suffix=".tmp.npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: corrupt record ({exc}); delete it and rerun the same command to recompute "
                        "it.") from None


def write_manifest(path: Path, manifest: ProtocolManifest) -> None:
    """Writes a protocol manifest, keeping the entries of earlier invocations (:meth:`ProtocolManifest.merge`)."""
    path = Path(path)
    if path.exists():
        manifest = manifest.merge(read_manifest(path))
    write_json(path, manifest.to_json())


def _jsonable(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def rows_for(protocol: str, unit: Mapping[str, Any], condition: str, level: float | None,
             metrics: Mapping[str, float]) -> list[dict[str, Any]]:
    base = {k: unit[k] for k in ("corpus", "model", "variant", "regime", "seed", *UNIT_COLUMNS)}
    return [{**base, "protocol": protocol, "condition": condition,
             "level": np.nan if level is None else level, "metric": m, "value": v} for m, v in metrics.items()]


def collect(out: Path, records: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Rebuilds the tidy table from the protocol manifests and evaluation records of a run.

    Each record is read once, however many protocols it serves, and reported under each of them
    (one row per protocol and score, in the order the manifests list them); ``records`` are those
    the caller has already read (by path relative to ``out``), which are not read again.  The robustness
    summary rows of ``results.csv`` are derived from these; the runner adds them with
    :func:`avbench.robustness.with_summaries`.
    """
    out = Path(out)
    rows: dict[tuple, dict[str, Any]] = {}
    cache: dict[str, Any] = dict(records or {})

    def record(rel: str, kind):
        if rel not in cache:
            path = out / rel
            cache[rel] = kind.from_json(read_json(path)) if path.exists() else None
        return cache[rel]

    def add(protocol: str, unit: Mapping[str, Any], condition: str, level, metrics) -> None:
        for row in rows_for(protocol, unit, condition, level, metrics):
            key = tuple(str(row[c]) for c in COLUMNS[:-1])
            rows.pop(key, None)  # a later entry for the same score (a rerun) replaces the earlier one
            rows[key] = row

    for m in read_manifests(out):
        for e in m.entries:
            ev = record(e.path, EvalRecord)
            if ev is not None:
                add(m.protocol, e.unit, ev.condition, ev.level, ev.metrics)
        for e in m.train:
            tr = record(e.path, TrainRecord)
            if tr is not None:
                add(m.protocol, e.unit, "train", None, tr.train_metrics)
    return pd.DataFrame(list(rows.values()), columns=TIDY_COLUMNS)


def upgrade_table(table: pd.DataFrame, manifests: list[ProtocolManifest]) -> pd.DataFrame:
    """Adds the unit columns to a version 0 table (``results.csv`` written before they existed),
    deciding them per (protocol, model, variant) with :func:`unit_facts`."""
    definitions = {m.protocol: m.definition or {} for m in manifests}
    facts = {key: unit_facts(key[2], key[1], definitions.get(key[0], {}))
             for key in table[["protocol", "model", "variant"]].drop_duplicates().itertuples(index=False)}
    keys = list(table[["protocol", "model", "variant"]].itertuples(index=False))
    table = table.copy()
    for c in UNIT_COLUMNS:
        if c not in table.columns:
            table[c] = [facts[k][c] for k in keys]
    return table


def load_results(path: Path) -> pd.DataFrame:
    """Reads a tidy table from a run directory or a CSV file, refusing what is not one.

    A table written before the unit columns existed gets them from the manifests beside it
    (:func:`upgrade_table`).

    A value that is not a number would otherwise become a silent blank in every table, so
    ``value`` and ``level`` must be numbers (``level`` may be empty) and ``seed`` an integer;
    the message names the file, the line and the column.
    """
    path = Path(path)
    csv = path / "results.csv" if path.is_dir() else path
    if not csv.exists():
        raise FileNotFoundError(f"{csv}: no results table here (not found); run `avbench run ... --out {path}` first.")
    try:
        table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{csv}: cannot be read as a CSV results table ({str(exc).splitlines()[0]}).") from None
    missing = set(COLUMNS) - set(table.columns)
    if missing:
        raise DataError(f"{csv}: not an avbench results table (missing columns {sorted(missing)}).")
    for column, integer, blank_ok in (("value", False, True), ("level", False, True), ("seed", True, False)):
        text = table[column].str.strip()
        number = pd.to_numeric(text.where(text != "", None), errors="coerce")
        bad = (number.isna() & ((text != "") | (not blank_ok))) | (integer & (number % 1 != 0))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            kind = "an integer" if integer else ("a number or empty" if blank_ok else "a number")
            raise _bad_cell(csv, table, i, column, kind)
        table[column] = number.astype(int) if integer else number
    table["variant"] = table["variant"].replace("", "default")
    check_values(table, csv)
    if not all(c in table.columns for c in UNIT_COLUMNS):
        return upgrade_table(table, read_manifests(csv.parent))
    flags = table["is_default"].str.strip().str.lower().map({"true": True, "false": False})
    shifts = pd.to_numeric(table["train_shift_ms"].str.strip(), errors="coerce")
    for column, parsed, kind in (("train_shift_ms", shifts, "a number"), ("is_default", flags, "True or False")):
        if parsed.isna().any():
            raise _bad_cell(csv, table, int(np.flatnonzero(parsed.isna().to_numpy())[0]), column, kind)
    table["train_shift_ms"], table["is_default"] = shifts, flags.astype(bool)
    return table


#: What each metric's values can be, by name (exact, else the longest matching prefix, else a "seconds"
#: suffix): a rule ``(low, high, integer)``; metrics named by none (a plugin's own) are not checked.
METRIC_RANGES: dict[str, tuple[float, float, bool]] = {
    "micro_f1": (0.0, 1.0, False), "macro_f1": (0.0, 1.0, False), "accuracy": (0.0, 1.0, False),
    "auc_": (0.0, 1.0, False), "relative_": (0.0, np.inf, False),
    "ece": (0.0, 1.0, False), "brier": (0.0, 2.0, False), "nll": (0.0, np.inf, False),
    "params": (0.0, np.inf, True), "epochs": (0.0, np.inf, True), "best_epoch": (0.0, np.inf, True),
    "seconds": (0.0, np.inf, False),
}


#: How far past a limit of :data:`METRIC_RANGES` a value may lie (float rounding of a computed score).
RANGE_TOLERANCE = 1e-9
_FIX_ROW = ("Fix or delete the row (in a run directory, the next `avbench run` rebuilds results.csv from the run's "
            "records).")


def metric_range(metric: str) -> tuple[float, float, bool] | None:
    """The rule of :data:`METRIC_RANGES` for ``metric`` (None: not checked)."""
    if metric in METRIC_RANGES:
        return METRIC_RANGES[metric]
    prefixes = [p for p in METRIC_RANGES if p.endswith("_") and metric.startswith(p)]
    if prefixes:
        return METRIC_RANGES[max(prefixes, key=len)]
    return METRIC_RANGES["seconds"] if metric.endswith("seconds") or metric.startswith("seconds") else None


def check_values(table: pd.DataFrame, csv: Path) -> None:
    """Refuses impossible numbers (an F1 of 1.7, a negative parameter count) and the same score recorded
    twice with different values, naming the line(s): a table drawn from them would be silently wrong.

    Raises:
        DataError: The first offending line (and, for a conflict, the line it conflicts with).
    """
    values = table["value"].to_numpy(float)
    for metric, rows in table.groupby("metric", sort=False).groups.items():
        rule = metric_range(str(metric))
        if rule is None:
            continue
        low, high, integer = rule
        v = values[table.index.get_indexer(rows)]
        known = ~np.isnan(v)
        # a float step past a limit (an AUC of 1.0000000000000002 from the trapezoid rule) is not impossible
        bad = known & ((v < low - RANGE_TOLERANCE) | (v > high + RANGE_TOLERANCE) | ~np.isfinite(v) |
                       (integer & (np.mod(v, 1) != 0)))
        if bad.any():
            i = int(table.index.get_indexer(rows)[np.flatnonzero(bad)[0]])
            what = ("a non-negative integer" if integer else
                    f"finite and >= {low:g}" if high == np.inf else f"in [{low:g}, {high:g}]")
            raise DataError(f"{csv}: line {i + 2}: the {metric} value must be {what}. Got "
                            f"{float(table['value'].iloc[i])!r} instead. {_FIX_ROW}")
    key = [c for c in COLUMNS if c != "value"]
    norm = table[key].astype(str).assign(level=table["level"].round(9).map(repr))  # NaN levels group too
    dup = norm.duplicated(keep=False)
    if dup.any():
        groups = norm[dup].groupby(key, sort=False).groups
        for rows in groups.values():
            pos = table.index.get_indexer(rows)
            v = values[pos]
            known = v[~np.isnan(v)]
            if len(known) and known.max() - known.min() > 1e-12:
                score = ", ".join(f"{c}={table[c].iloc[pos[0]]}" for c in key)
                raise DataError(f"{csv}: lines {', '.join(str(p + 2) for p in pos[:5])} record the same score "
                                f"({score}) with different values ({', '.join(repr(float(x)) for x in v[:5])}). Keep "
                                f"one of them. {_FIX_ROW}")


def _bad_cell(csv: Path, table: pd.DataFrame, i: int, column: str, kind: str) -> DataError:
    return DataError(f"{csv}: line {i + 2}, column {column!r} must be {kind}. Got {table[column].iloc[i]!r} "
                     "instead. Fix or delete the row (avbench rebuilds results.csv from the run's records on the "
                     "next `avbench run`).")


def summary_table(table: pd.DataFrame, metrics=("micro_f1", "macro_f1")) -> pd.DataFrame:
    """Wide view for the terminal: one row per (model, variant, regime, condition, level),
    one column per seed and metric, plus mean and standard deviation."""
    t = table[table["metric"].isin(metrics) & (table["condition"] != "train")].copy()
    if t.empty:
        return pd.DataFrame()
    t["level"] = t["level"].map(lambda x: "" if pd.isna(x) else f"{x:g}")
    keys = ["protocol", "model", "variant", "regime", "condition", "level"]
    wide = t.pivot_table(index=keys, columns=["metric", "seed"], values="value", aggfunc="first", sort=False)
    parts = []
    for m in metrics:
        if m not in wide.columns.get_level_values(0):
            continue
        block = wide[m].copy()
        block.columns = [f"s{c}" for c in block.columns]
        block["mean"], block["sd"] = block.mean(axis=1), block.std(axis=1, ddof=1)
        block.columns = pd.MultiIndex.from_product([[m], block.columns])
        parts.append(block)
    return pd.concat(parts, axis=1)


# ---------------------------------------------------------------------- selecting rows
def matches(column: pd.Series, want: Any) -> np.ndarray:
    """Which values of a tidy-table column a filter value selects.

    None (or NaN) selects the missing values (``level`` of an unperturbed condition); a list, tuple
    or set any of its members; a number on a float column (``level``) any value within 1e-9, so a
    level written ``0.3`` selects the ``0.1 + 0.2`` that arithmetic produced; anything else equality.
    The report and :mod:`avbench.stats` both select through here, so a filter means the same in both.
    """
    if want is None or (pd.api.types.is_scalar(want) and pd.isna(want)):
        return column.isna().to_numpy()
    if isinstance(want, (list, tuple, set)):
        return column.isin(list(want)).to_numpy()
    numeric = isinstance(want, (int, float, np.number)) and not isinstance(want, bool)
    if numeric and pd.api.types.is_float_dtype(column):
        return np.isclose(column.to_numpy(float), float(want), atol=1e-9, rtol=0)
    return (column == want).to_numpy()


def select(table: pd.DataFrame, **filt: Any) -> pd.DataFrame:
    """The rows of a tidy table matching every filter (``column=value``, see :func:`matches`).

    >>> t = pd.DataFrame({"condition": ["full", "mask_audio"], "level": [None, 0.1 + 0.2], "value": [0.7, 0.6]})
    >>> select(t, condition="mask_audio", level=0.3)["value"].tolist(), select(t, level=None)["value"].tolist()
    ([0.6], [0.7])
    """
    mask = np.ones(len(table), dtype=bool)
    for col, want in filt.items():
        mask &= matches(table[col], want)
    return table[mask]
