"""Speaker-independent train/dev/test splits, shared by every model and protocol.

The paper trains each model 20 times on 20 random speaker-independent
70/15/15 partitions and reuses the same 20 partitions for every model, so that
matched-pair tests compare like with like.  Splits here are a pure function of
(speaker set, base seed, index), and :func:`load_splits` pins them in the
store's ``splits.json`` so that every run, model and protocol reads the same
ones.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Sequence

import numpy as np

from avbench.atomic import atomic_path
from avbench.validation import DataError, ValidationError, check_int

if TYPE_CHECKING:
    from avbench.data.store import FeatureStore

PARTITIONS = ("train", "dev", "test")
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
SPLITS_FILE = "splits.json"
SPLITS_FORMAT = 1
# A partition with fewer speakers or clips than these still trains and scores, but its score says
# little: one speaker's test set measures that speaker, not speaker independence, and a few clips
# move F1 by large steps.  CREMA-D (91 actors) and MSP-IMPROV (12 speakers) pass both.
MIN_SPEAKERS = 2
MIN_CLIPS = 30


@dataclass(frozen=True)
class SplitFinding:
    """One way a trial's partition is too thin for its scores to mean what the paper's do.

    Attributes:
        partition: ``train``, ``dev`` or ``test``.
        problem: ``few_speakers``, ``few_clips``, ``missing_class`` (a warning) or
            ``untrained_class`` (training lacks a class the test partition has: refused, as the
            model could never predict it and F1 would be computed over a class it never saw).
        text: The finding in words, for the warning and the unit's record.
    """

    partition: str
    problem: Literal["few_speakers", "few_clips", "missing_class", "untrained_class"]
    text: str

    @property
    def refused(self) -> bool:
        return self.problem == "untrained_class"

    def to_json(self) -> dict[str, str]:
        return {"partition": self.partition, "problem": self.problem, "text": self.text}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "SplitFinding":
        return cls(str(d["partition"]), d["problem"], str(d["text"]))


@dataclass(frozen=True)
class Split:
    """One trial's partition of the speakers, and the seed the trial trains with."""

    index: int
    seed: int
    train: tuple[str, ...]
    dev: tuple[str, ...]
    test: tuple[str, ...]
    # what check_partitions found, carried to each unit of the trial and kept in its train.json;
    # not part of the split itself (split files never hold it)
    findings: tuple[SplitFinding, ...] = field(default=(), compare=False)

    def to_json(self) -> dict[str, Any]:
        findings = {"findings": [f.to_json() for f in self.findings]} if self.findings else {}
        return {"index": self.index, "seed": self.seed, **{p: list(m) for p, m in self.partitions().items()},
                **findings}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Split":
        """Reads :meth:`to_json` (as split files, records and unit specs store it)."""
        return cls(int(d["index"]), int(d["seed"]), *(tuple(map(str, d[p])) for p in PARTITIONS),
                   findings=tuple(SplitFinding.from_json(f) for f in d.get("findings", ())))

    def partitions(self) -> dict[str, tuple[str, ...]]:
        return {p: getattr(self, p) for p in PARTITIONS}

    def indices(self, speakers: np.ndarray) -> dict[str, np.ndarray]:
        """Maps each partition to the sorted rows whose speaker belongs to it."""
        spk = np.asarray(speakers).astype(str)
        return {p: np.flatnonzero(np.isin(spk, list(members))) for p, members in self.partitions().items()}


def check_partitions(split: Split, speakers: Sequence[Any], labels: Sequence[int], label_names: Sequence[str], *,
                     min_speakers: int = MIN_SPEAKERS, min_clips: int = MIN_CLIPS) -> list[SplitFinding]:
    """What makes one trial's partitions too thin to train on or to score as the paper does.

    Args:
        split: The trial's split.
        speakers, labels: The speaker and class index of every clip of the corpus.
        label_names: The class names, by index.
        min_speakers, min_clips: A partition with fewer is reported (:data:`MIN_SPEAKERS`,
            :data:`MIN_CLIPS`).

    Returns:
        The findings in partition order; one whose ``refused`` is true means the trial cannot be
        trained meaningfully (a class of the test partition is absent from training).
    """
    rows = split.indices(speakers)
    labels = np.asarray(labels)
    classes = {p: set(labels[r].tolist()) for p, r in rows.items()}
    found = []
    for p in PARTITIONS:
        n_spk, n_clips = len(split.partitions()[p]), len(rows[p])
        if n_spk < min_speakers:
            found.append(SplitFinding(p, "few_speakers", f"the {p!r} partition has {n_spk} speaker(s), fewer "
                                                         f"than {min_speakers}"))
        if n_clips < min_clips:
            found.append(SplitFinding(p, "few_clips", f"the {p!r} partition has {n_clips} clip(s), fewer than "
                                                      f"{min_clips}"))
        absent = [label_names[c] for c in range(len(label_names)) if c not in classes[p]]
        untrained = [label_names[c] for c in sorted(classes["test"] - classes["train"])] if p == "train" else []
        if untrained:
            found.append(SplitFinding(p, "untrained_class", f"the 'train' partition has no clip of class "
                                                            f"{', '.join(map(repr, untrained))}, which the 'test' "
                                                            "partition has: the model could never predict it"))
        elif absent:
            found.append(SplitFinding(p, "missing_class", f"the {p!r} partition has no clip of class "
                                                          f"{', '.join(map(repr, absent))}"))
    return found


def audit_splits(splits: Sequence[Split], store: "FeatureStore", echo: Callable[[str], None]) -> list[Split]:
    """Checks each trial's partitions (:func:`check_partitions`) before a run: says each finding as a
    warning naming the trial, refuses a trial whose training lacks a class its test partition has,
    and returns the splits carrying their findings, which each unit keeps in its ``train.json``.

    Raises:
        DataError: Naming the store, the trial (``seed-NN`` in unit directories) and the classes.
    """
    out = []
    for split in splits:
        findings = check_partitions(split, store.speakers, store.labels, store.label_names)
        where = f"trial {split.index} (seed-{split.index:02d})"
        for f in findings:
            if f.refused:
                raise DataError(f"{store.path}: {where}: {f.text}. Use a corpus with more speakers or clips of "
                                "that class, or other partitions (--splits).")
        if findings:
            echo(f"warning: {where}: {'; '.join(f.text for f in findings)}.")
        out.append(replace(split, findings=tuple(findings)))
    return out


def split_seed(base_seed: int, index: int) -> int:
    """The seed of trial ``index``: distinct for every (base_seed, index) pair."""
    return int(np.random.SeedSequence([base_seed, index]).generate_state(1)[0])


def check_fractions(fractions: Sequence[float], owner: str) -> tuple[float, float, float]:
    """Train/dev/test shares: three positive numbers summing to 1."""
    try:
        f = tuple(float(x) for x in fractions)
    except (TypeError, ValueError):
        f = ()
    valid = len(f) == 3 and all(math.isfinite(x) and x > 0 for x in f)
    if not valid or not math.isclose(sum(f), 1, abs_tol=1e-6):
        raise ValidationError(f"The 'fractions' parameter of {owner} must be three positive numbers "
                              f"(train, dev, test) summing to 1. Got {fractions!r} instead.")
    return f


def make_split(speakers: Sequence[Any], index: int, base_seed: int = 0,
               fractions: Sequence[float] = DEFAULT_FRACTIONS) -> Split:
    """Draws split ``index``: permutes the speakers, then cuts by clip counts.

    Args:
        speakers: The speaker of every clip (repeats give the clip counts).
        index: Trial number; with ``base_seed`` it fixes the permutation.
        base_seed: Seed shared by a family of splits.
        fractions: Target clip shares of train, dev and test.

    The cuts put the cumulative clip share as close to the targets as
    possible while leaving every partition at least one speaker.
    """
    owner = "make_split"
    index = check_int(index, "index", owner, minimum=0)
    base_seed = check_int(base_seed, "base_seed", owner, minimum=0)
    f = check_fractions(fractions, owner)
    names, counts = np.unique(np.asarray(speakers).astype(str), return_counts=True)
    n = len(names)
    if n < 3:
        raise ValidationError(f"The 'speakers' parameter of {owner} must hold at least 3 distinct "
                              f"speakers (one per partition). Got {n} instead.")
    seed = split_seed(base_seed, index)
    order = np.random.default_rng(seed).permutation(n)
    share = np.cumsum(counts[order]) / counts.sum()  # share[j]: first j + 1 speakers
    a = 1 + int(np.argmin(np.abs(share[: n - 2] - f[0])))
    b = a + 1 + int(np.argmin(np.abs(share[a: n - 1] - f[0] - f[1])))
    parts = [tuple(sorted(names[order[s]].tolist())) for s in (slice(0, a), slice(a, b), slice(b, n))]
    return Split(index, seed, *parts)


def make_splits(speakers: Sequence[Any], n_splits: int = 20, base_seed: int = 0,
                fractions: Sequence[float] = DEFAULT_FRACTIONS) -> list[Split]:
    """Splits 0 .. ``n_splits`` - 1 (see :func:`make_split`)."""
    n_splits = check_int(n_splits, "n_splits", "make_splits", minimum=1)
    return [make_split(speakers, i, base_seed, fractions) for i in range(n_splits)]


def check_split(split: Split, speakers: Sequence[Any] | None = None, *, where: str | None = None) -> None:
    """Refuses empty partitions, shared speakers and (given ``speakers``) unknown ones.

    Args:
        split: The split to check.
        speakers: The corpus's speakers (per clip or unique); optional.
        where: Prefix naming the file the split came from, for messages.
    """
    prefix = f"{where}: split {split.index}" if where else f"split {split.index}"
    parts = split.partitions()
    for p, members in parts.items():
        if not members:
            raise ValidationError(f"{prefix}: the {p!r} partition is empty; every partition needs "
                                  "at least one speaker.")
    for i, p in enumerate(PARTITIONS):
        for q in PARTITIONS[i + 1:]:
            both = sorted(set(parts[p]) & set(parts[q]))
            if both:
                raise ValidationError(f"{prefix}: speakers {', '.join(both)} are in both {p!r} and {q!r}; "
                                      "splits must be speaker-independent.")
    if speakers is not None:
        unknown = sorted(set().union(*parts.values()) - set(np.asarray(speakers).astype(str)))
        if unknown:
            raise ValidationError(f"{prefix}: speakers {', '.join(unknown)} are not in the corpus.")


def _write_json_atomic(path: Path, obj: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1) + "\n")


def _read_record(file: Path, store: "FeatureStore") -> dict:
    try:
        record = json.loads(file.read_text())
        splits = [Split.from_json(s) for s in record["splits"]]
        record = {**record, "splits": splits, "fractions": check_fractions(record["fractions"], str(file)),
                  "base_seed": int(record["base_seed"])}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{file}: cannot be read as a splits file ({exc}); delete it to "
                              "regenerate the splits.") from None
    if record.get("store_checksum") != store.checksum:
        raise DataError(f"{file}: made for a store with checksum {record.get('store_checksum')!r}, "
                              f"but this store's checksum is {store.checksum!r}; the data changed since "
                              "the splits were drawn. Delete the file to draw new splits.")
    for i, split in enumerate(record["splits"]):
        if split.index != i:
            raise ValidationError(f"{file}: entry {i} has index {split.index}; expected indices 0, 1, 2, ...")
        check_split(split, store.speakers, where=str(file))
    return record


def splits_files(store: "FeatureStore") -> tuple[list[Path], Path]:
    """Where the store's splits are read from, and where new ones are written.

    ``<store>/splits.json`` is the place: every run and colleague using the store shares it.
    A store that cannot be written (a corpus shared read-only by a lab) keeps its extended
    splits in the cache instead, ``$AVBENCH_HOME/splits/<name>-<checksum>.json``; splits are a
    pure function of the speakers and the base seed, so both places hold the same splits.
    """
    from avbench.paths import data_home

    own = Path(store.path) / SPLITS_FILE
    writable = os.access(store.path, os.W_OK) and (not own.exists() or os.access(own, os.W_OK))
    if writable:
        return [own], own
    cache = data_home() / "splits" / f"{store.name}-{store.checksum}.json"
    return [own, cache], cache


def load_splits(store: "FeatureStore", n_splits: int, *, base_seed: int | None = None,
                fractions: Sequence[float] | None = None, write: bool = True) -> list[Split]:
    """The store's first ``n_splits`` splits, drawn once and then reused.

    Splits live in ``<store>/splits.json`` (or, for a read-only store, in the
    cache: :func:`splits_files`) with the base seed, the fractions and the
    store checksum.  An existing file is reused (extended
    deterministically when more splits are asked for); one that is
    inconsistent with the store is refused.

    Args:
        store: The corpus.
        n_splits: How many splits (the paper uses 20).
        base_seed, fractions: For a new file (defaults 0 and 70/15/15); for an
            existing file they must match what it records, or be None.
        write: Record splits drawn now in the file; False draws the same splits in memory only
            (a dry run writes nothing).
    """
    owner = "load_splits"
    n_splits = check_int(n_splits, "n_splits", owner, minimum=1)
    if base_seed is not None:
        base_seed = check_int(base_seed, "base_seed", owner, minimum=0)
    if fractions is not None:
        fractions = check_fractions(fractions, owner)
    speakers = np.unique(np.asarray(store.speakers).astype(str))
    if len(speakers) < len(PARTITIONS):  # the corpus's fault, not an option's: say which corpus
        raise DataError(f"{store.path}: the corpus has {len(speakers)} speaker(s) ({', '.join(speakers)}); "
                        f"speaker-independent train/dev/test splits need at least {len(PARTITIONS)}, one per "
                        "partition. Use a corpus with more speakers.")
    sources, target = splits_files(store)
    records = [_read_record(f, store) | {"file": f} for f in sources if f.exists()]
    if records:
        record = max(records, key=lambda r: len(r["splits"]))
        file = record["file"]
        for key, asked in (("base_seed", base_seed), ("fractions", fractions)):
            if asked is not None and not np.allclose(asked, record[key]):
                raise ValidationError(f"The {key!r} parameter of {owner} must match the {record[key]!r} "
                                      f"recorded in {file} (or be None). Got {asked!r} instead.")
    else:
        record = {"base_seed": 0 if base_seed is None else base_seed,
                  "fractions": fractions or DEFAULT_FRACTIONS, "splits": []}
    splits = record["splits"]
    if len(splits) < n_splits:
        splits = splits + [make_split(store.speakers, i, record["base_seed"], record["fractions"])
                           for i in range(len(splits), n_splits)]
        if write:
            _write_json_atomic(target, {"format_version": SPLITS_FORMAT, "store_name": store.name,
                                        "store_checksum": store.checksum, "base_seed": record["base_seed"],
                                        "fractions": list(record["fractions"]),
                                        "splits": [s.to_json() for s in splits]})
    return splits[:n_splits]
