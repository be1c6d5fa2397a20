"""Test-time conditions: what a protocol does to a test clip before the model sees it.

A condition transforms one clip's real frames (numpy, ``frames x dim``, no
padding) and never knows which model will read them.  Random conditions draw
from a generator seeded by (trial seed, clip id, condition, level), so every
model sees exactly the same masks, and the masks can be stored and re-derived.

Each kind of condition is a :class:`ConditionKind` in the :data:`KINDS` registry:
its transform, whether it takes levels (their bounds and unit), which modality it
needs and whether it removes it, an optional seeded keep-mask (stored with the
results) and how reports name and draw it.  Protocols, the runner's mask files,
robustness summaries, report labels and the robustness figures all read it, so a
new kind registered here, or by a package through the ``avbench.conditions``
entry-point group, needs no other change to avbench.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np

from avbench.registry import KINDS
from avbench.validation import ValidationError, check_choice, check_float, did_you_mean

MODALITY_CODES = {"audio": "a", "visual": "v"}
Transform = Callable[[np.ndarray, float, np.random.Generator, float], np.ndarray]


def _identity(levels: np.ndarray) -> np.ndarray:
    return levels


@dataclass(frozen=True)
class KindFigure:
    """How a report draws a kind's score-versus-level curves (one panel per modality).

    Attributes:
        number, title: ``Fig. R1``, ``Temporal misalignment`` (default: the next free ``Fig. R<n>``
            and the kind's ``what``).
        xlabel: The x axis; ``{mod}`` becomes the modality.
        x: Level -> x value (e.g. a fraction -> percent).
        note: A sentence for the caption: what the levels mean and how the stream is changed.
        zero_line, invert: Draw a line at x = 0; reverse the x axis (the hardest level on the right).
        beside: Another kind drawn dashed in the same panels (occlusion beside masking), with
            ``beside_x`` mapping its levels onto this kind's axis.
        protocol: The protocol that produces the scores, named when they are missing.
        key: The figure's file stem (default ``figR<n>_<kind>``).
        legend: Legend entries of this kind's and the ``beside`` kind's line styles.
    """

    number: str = ""
    title: str = ""
    xlabel: str = "Level ({mod})"
    x: Callable[[np.ndarray], np.ndarray] = _identity
    note: str = ""
    zero_line: bool = False
    invert: bool = False
    beside: str | None = None
    beside_x: Callable[[np.ndarray], np.ndarray] | None = None
    protocol: str = ""
    key: str = ""
    legend: tuple[str, str] = ("", "")


@dataclass(frozen=True)
class ConditionKind:
    """One kind of test condition.

    Attributes:
        name: What protocols write as ``kind``; conditions are named ``<name>_<modality>``.
        transform: ``transform(frames, level, rng, rate) -> frames`` of one modality of one clip
            (``rate`` in frames/s); None changes nothing (``full``).
        modality: Acts on one modality, which the protocol names.
        removes: Removes that modality entirely: a model reading only it is not scored.
        levels: Takes a list of levels, each checked against ``bounds`` (inclusive; None: open).
        level_unit: What a level means, for captions and ``avbench protocols show``.
        keep_mask: ``keep_mask(n_frames, level, rng) -> bool array``, when the kind zeroes frames
            at random: the runner stores the masks once per trial, shared by every model.
        label: Participle after the modality in table sections (``audio masked``).
        what: Noun for captions and messages (``frame masking``).
        figure: How the report draws the kind; None: no robustness figure (a kind with a
            figure of the paper's own, or without levels).
        order: Position in tables and figures (built-ins first, in the paper's order).
        frame_level: Acts on individual frames (masking, bursts, shifts), so it needs a
            frame-level store; refused on a pooled one (:func:`check_store`).
    """

    name: str
    transform: Transform | None = None
    modality: bool = True
    removes: bool = False
    levels: bool = True
    bounds: tuple[float | None, float | None] = (None, None)
    level_unit: str = ""
    keep_mask: Callable[[int, float, np.random.Generator], np.ndarray] | None = None
    label: str = ""
    what: str = ""
    figure: KindFigure | None = KindFigure()
    order: int = 100
    frame_level: bool = False


def register_kind(kind: ConditionKind) -> ConditionKind:
    """Adds a kind to :data:`KINDS` (a package can instead name it in the ``avbench.conditions``
    entry-point group)."""
    if not isinstance(kind, ConditionKind):
        raise ValidationError(f"A condition kind must be an avbench.conditions.ConditionKind. Got {kind!r} instead.")
    return KINDS.register(kind.name, kind)


def get_kind(name: str) -> ConditionKind:
    kind = KINDS.get(name)
    if not isinstance(kind, ConditionKind):
        raise ValidationError(f"The condition kind {name!r} (group {KINDS.group!r}) must be an "
                              f"avbench.conditions.ConditionKind. Got {type(kind).__name__} instead.")
    return kind


def kinds() -> list[ConditionKind]:
    """Every registered kind, in report order."""
    return sorted((get_kind(n) for n in KINDS.names()), key=lambda k: (k.order, k.name))


@dataclass(frozen=True)
class Condition:
    """One test condition at one level.

    Attributes:
        kind: A registered :class:`ConditionKind` name (``full``, ``clip``, ``mask``, ``burst``,
            ``shift``, ``noise``, or a plugin's).
        modality: The modality it acts on (None for ``full``).
        level: The condition's level in its kind's unit; None where it has none.
    """

    kind: str
    modality: str | None = None
    level: float | None = None

    @property
    def name(self) -> str:
        return self.kind if self.modality is None else f"{self.kind}_{self.modality}"

    @property
    def key(self) -> str:
        """File-safe identifier of condition and level."""
        return self.name if self.level is None else f"{self.name}@{self.level:g}"

    def removes(self) -> frozenset[str]:
        """Modalities this condition removes entirely (a model reading only those is not scored)."""
        return frozenset({self.modality}) if get_kind(self.kind).removes else frozenset()

    @property
    def seed_level(self) -> int:
        """The level's part of the random draws' seed: ``round(level * 1000)`` (in 32 bits), so levels
        closer than 0.001 would draw alike (:func:`check_distinct` refuses them)."""
        return 0 if self.level is None else int(round(self.level * 1000)) & 0xFFFFFFFF

    def rng(self, trial_seed: int, clip_id: str) -> np.random.Generator:
        return np.random.default_rng([trial_seed, zlib.crc32(clip_id.encode()), zlib.crc32(self.name.encode()),
                                      self.seed_level])

    def apply(self, audio: np.ndarray, visual: np.ndarray, *, rng: np.random.Generator,
              rates: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
        """Returns the transformed (audio, visual); inputs are not modified."""
        transform = get_kind(self.kind).transform
        if transform is None:
            return audio, visual
        x = audio if self.modality == "audio" else visual
        rate = rates[0] if self.modality == "audio" else rates[1]
        y = transform(x, self.level, rng, rate)
        return (y, visual) if self.modality == "audio" else (audio, y)


def keep_mask(n: int, keep: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask keeping ``round(keep * n)`` frames chosen at random (Sec. 5.2.2)."""
    k = int(round(keep * n))
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=k, replace=False)] = True
    return mask


def burst_mask(n: int, cover: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean keep-mask with one contiguous missing segment covering ``round(cover * n)`` frames."""
    k = int(round(cover * n))
    start = int(rng.integers(0, n - k + 1))
    mask = np.ones(n, dtype=bool)
    mask[start:start + k] = False
    return mask


def _clip(x, level, rng, rate):
    return np.zeros_like(x)


def _mask(x, level, rng, rate):
    return x * keep_mask(len(x), level, rng)[:, None]


def _burst(x, level, rng, rate):
    return x * burst_mask(len(x), level, rng)[:, None]


def shift_frames(n_ms: float, rate: float) -> int:
    """Frames a shift of ``n_ms`` milliseconds moves a stream sampled at ``rate`` frames/s."""
    return int(round(n_ms * rate / 1000.0))


def shift_stream(x, k: int):
    """Delays (``k > 0`` frames) or advances (``k < 0``) a stream, keeping its length: frames
    pushed past either end are dropped and the gap is zero-filled, as a lagging sensor would.

    Works on a numpy array or a torch tensor (frames first), so that training-time shifts
    (``training.random_shift``) are the test condition itself.
    """
    n = len(x)
    y = x.copy() if isinstance(x, np.ndarray) else x.clone()
    y[:] = 0
    if 0 <= k < n:
        y[k:] = x[:n - k]
    elif -n < k < 0:
        y[:n + k] = x[-k:]
    return y


def _shift(x, level, rng, rate):
    return shift_stream(x, shift_frames(level, rate))


def _noise(x, level, rng, rate):
    """Additive white Gaussian noise at ``level`` dB SNR relative to the clip's feature power."""
    power = float(np.mean(np.square(x, dtype=np.float64)))
    sigma = math.sqrt(power / (10.0 ** (level / 10.0))) if power > 0 else 0.0
    return (x + rng.standard_normal(x.shape) * sigma).astype(x.dtype)


def _percent(levels: np.ndarray) -> np.ndarray:
    return 100 * levels


def _percent_removed(levels: np.ndarray) -> np.ndarray:
    return 100 * (1 - levels)


for _kind in (
    ConditionKind("full", modality=False, levels=False, figure=None, order=0),
    ConditionKind("clip", _clip, removes=True, levels=False, label="clipped", what="clipping", figure=None,
                  order=1),
    # Fig. 5 of the paper draws masking (avbench.report.figures.fig5); occlusion draws it beside bursts
    ConditionKind("mask", _mask, bounds=(0.0, 1.0), level_unit="fraction of frames kept", keep_mask=keep_mask,
                  label="masked", what="frame masking", figure=None, order=2, frame_level=True),
    ConditionKind("burst", _burst, bounds=(0.0, 1.0), level_unit="fraction of frames removed", keep_mask=burst_mask,
                  label="occluded", what="occlusion", order=3, frame_level=True, figure=KindFigure(
                      "Fig. R2", "Contiguous occlusion", "Frames removed from the {mod} stream (%)", _percent,
                      "solid: one contiguous burst covering the given share of frames; dashed: the same share of "
                      "frames removed at random (frame masking)", beside="mask", beside_x=_percent_removed,
                      protocol="occlusion", key="figR2_occlusion",
                      legend=("contiguous burst", "scattered frames (masking)"))),
    ConditionKind("shift", _shift, level_unit="ms (> 0: the modality lags)", label="shifted", what="misalignment",
                  order=4, frame_level=True, figure=KindFigure(
                      "Fig. R1", "Temporal misalignment", "Shift of the {mod} stream (ms; > 0: it lags)",
                      note="positive shifts delay the stream (frames pushed past the end dropped, the gap "
                           "zero-filled)", zero_line=True,
                      protocol="misalignment (and misalignment-trained)", key="figR1_misalignment")),
    ConditionKind("noise", _noise, level_unit="dB SNR (lower: noisier)", label="noisy", what="noise", order=5,
                  figure=KindFigure("Fig. R3", "Additive noise", "SNR of the {mod} features (dB; lower = noisier)",
                                    note="white Gaussian noise at the given SNR relative to the clip's feature "
                                         "power, noisiest on the right", invert=True, protocol="noise",
                                    key="figR3_noise")),
):
    register_kind(_kind)


def check_store(conditions: Iterable[Condition], store) -> None:
    """Refuses a frame-level condition on a pooled store (one row per clip, ``--pool mean``), naming
    the condition: masking one row of one, or shifting it, would silently score something else."""
    if getattr(store, "frame_level", True):
        return
    for c in conditions:
        if get_kind(c.kind).frame_level:
            raise ValidationError(f"The condition {c.name} ({get_kind(c.kind).what}) needs frame-level features, "
                                  f"but the corpus {store.path} is pooled (one vector per clip, prepared with "
                                  "--pool mean). Use a store prepared without --pool, or a protocol without "
                                  "frame-level conditions.")


def expand(spec: dict[str, Any]) -> list[Condition]:
    """Turns one declarative condition entry into conditions, one per level.

    ``{"kind": "mask", "modality": "audio", "levels": [0.1, 0.2]}`` gives two
    conditions; ``full`` and ``clip`` take no levels.
    """
    owner = "a protocol condition"
    unknown = sorted(set(spec) - {"kind", "modality", "levels"})
    if unknown:
        raise ValidationError(f"A protocol condition has unknown keys {unknown}; expected kind, modality, levels."
                              f"{did_you_mean(unknown[0], ('kind', 'modality', 'levels'))} Got {spec!r}.")
    kind = get_kind(check_choice(spec.get("kind"), "kind", owner, tuple(KINDS.names())))
    modality = check_choice(spec.get("modality"), "modality", owner, tuple(MODALITY_CODES)) if kind.modality else None
    if not kind.levels:
        return [Condition(kind.name, modality)]
    levels = spec.get("levels")
    if not levels or not isinstance(levels, list):
        raise ValidationError(f"The 'levels' parameter of condition {kind.name!r} must be a non-empty list. "
                              f"Got {levels!r} instead.")
    low, high = kind.bounds
    return [Condition(kind.name, modality, check_float(lv, "levels", f"condition {kind.name!r}", low=low, high=high))
            for lv in levels]


def check_distinct(conditions: Iterable[Condition], owner: str) -> None:
    """Refuses two levels of one condition that would share random draws or an evaluation file.

    Masks and noise are seeded by :attr:`Condition.seed_level` and evaluations are filed under
    :attr:`Condition.key` (the level to 6 significant digits); both stay as they are so that stored
    masks and results remain valid, so levels that they cannot tell apart are refused instead of
    being scored alike, or into one file, and reported as independent rows.

    Args:
        conditions: Every condition a run scores (one protocol's, or a group's union).
        owner: Who declared them, for the message (``protocol 'masking'``).
    """
    seen: dict[tuple[str, Any], Condition] = {}
    for c in conditions:
        if c.level is None:
            continue
        for ident, clash in (
                (("seed", c.name, c.seed_level), "would draw the same random masks and noise (a level is seeded "
                                                 "by round(level * 1000)); give levels 0.001 or more apart"),
                (("key", c.key), f"would be filed as one evaluation ({c.key}); levels must differ within "
                                 "their first 6 significant digits")):
            other = seen.setdefault(ident, c)
            if other != c:
                raise ValidationError(f"The 'levels' parameter of condition {c.name!r} in {owner} holds "
                                      f"{other.level!r} and {c.level!r}, which {clash}.")
