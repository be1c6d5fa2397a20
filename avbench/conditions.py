"""Test-time conditions: what a protocol does to a test clip before the model sees it.

A condition transforms one clip's real frames (numpy, ``frames x dim``, no
padding) and never knows which model will read them.  Random conditions draw
from a generator seeded by (trial seed, clip id, condition, level), so every
model sees exactly the same masks, and the masks can be stored and re-derived.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from avbench.validation import ValidationError, check_choice, check_float

MODALITY_CODES = {"audio": "a", "visual": "v"}


@dataclass(frozen=True)
class Condition:
    """One test condition at one level.

    Attributes:
        kind: ``full``, ``clip``, ``mask``, ``shift``, ``burst`` or ``noise``.
        modality: The modality it acts on (None for ``full``).
        level: The condition's level (fraction of frames kept for ``mask``,
            fraction covered for ``burst``, milliseconds for ``shift``, SNR dB
            for ``noise``); None where it has none.
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
        return frozenset({self.modality}) if self.kind == "clip" else frozenset()

    def rng(self, trial_seed: int, clip_id: str) -> np.random.Generator:
        level = 0 if self.level is None else int(round(self.level * 1000))
        return np.random.default_rng([trial_seed, zlib.crc32(clip_id.encode()), zlib.crc32(self.name.encode()),
                                      level & 0xFFFFFFFF])

    def apply(self, audio: np.ndarray, visual: np.ndarray, *, rng: np.random.Generator,
              rates: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
        """Returns the transformed (audio, visual); inputs are not modified."""
        if self.kind == "full":
            return audio, visual
        x = audio if self.modality == "audio" else visual
        rate = rates[0] if self.modality == "audio" else rates[1]
        y = TRANSFORMS[self.kind](x, self.level, rng, rate)
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


def _shift(x, level, rng, rate):
    """Delays (positive ms) or advances (negative ms) the stream, keeping its length: frames
    pushed past either end are dropped and the gap is zero-filled, as a lagging sensor would."""
    k, n = shift_frames(level, rate), len(x)
    y = np.zeros_like(x)
    if 0 <= k < n:
        y[k:] = x[:n - k]
    elif -n < k < 0:
        y[:n + k] = x[-k:]
    return y


def _noise(x, level, rng, rate):
    """Additive white Gaussian noise at ``level`` dB SNR relative to the clip's feature power."""
    power = float(np.mean(np.square(x, dtype=np.float64)))
    sigma = math.sqrt(power / (10.0 ** (level / 10.0))) if power > 0 else 0.0
    return (x + rng.standard_normal(x.shape) * sigma).astype(x.dtype)


TRANSFORMS: dict[str, Callable[..., np.ndarray]] = {
    "clip": _clip, "mask": _mask, "burst": _burst, "shift": _shift, "noise": _noise,
}
KINDS = ("full", *TRANSFORMS)


def expand(spec: dict[str, Any]) -> list[Condition]:
    """Turns one declarative condition entry into conditions, one per level.

    ``{"kind": "mask", "modality": "audio", "levels": [0.1, 0.2]}`` gives two
    conditions; ``full`` and ``clip`` take no levels.
    """
    owner = "a protocol condition"
    unknown = set(spec) - {"kind", "modality", "levels"}
    if unknown:
        raise ValidationError(f"A protocol condition has unknown keys {sorted(unknown)}; "
                              f"expected kind, modality, levels. Got {spec!r}.")
    kind = check_choice(spec.get("kind"), "kind", owner, KINDS)
    if kind == "full":
        return [Condition("full")]
    modality = check_choice(spec.get("modality"), "modality", owner, tuple(MODALITY_CODES))
    if kind == "clip":
        return [Condition("clip", modality)]
    levels = spec.get("levels")
    if not levels or not isinstance(levels, list):
        raise ValidationError(f"The 'levels' parameter of condition {kind!r} must be a non-empty list. "
                              f"Got {levels!r} instead.")
    bounds = {"mask": (0.0, 1.0), "burst": (0.0, 1.0), "shift": (None, None), "noise": (None, None)}[kind]
    return [Condition(kind, modality, check_float(lv, "levels", f"condition {kind!r}",
                                                  low=bounds[0], high=bounds[1])) for lv in levels]
