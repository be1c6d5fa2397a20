"""From feature-store rows to padded tensors.

Clips are read lazily from the memory-mapped store, one batch at a time, so a
4096-d visual corpus never has to fit in memory.  Order of operations per
clip: read -> z-normalisation with the trial's training statistics (missing
frames stay zero) -> test condition (on the original frames, seeded per clip)
-> frame pooling of the profile -> float32 -> zero padding.  Normalising first
makes a frame that a condition or regime zeroes a true zero, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from avbench.conditions import Condition
from avbench.normalization import Normalizer


@dataclass
class Batch:
    audio: torch.Tensor
    visual: torch.Tensor
    audio_lengths: torch.Tensor
    visual_lengths: torch.Tensor
    labels: torch.Tensor
    rows: np.ndarray

    def inputs(self) -> tuple[torch.Tensor, ...]:
        return self.audio, self.visual, self.audio_lengths, self.visual_lengths


def pool_frames(x: np.ndarray, k: int) -> np.ndarray:
    """Averages non-overlapping windows of ``k`` frames (the last window may be shorter)."""
    if k == 1:
        return x
    n = len(x)
    m = -(-n // k)
    padded = np.zeros((m * k, x.shape[1]), dtype=np.float32)
    padded[:n] = x
    counts = np.full(m, k, dtype=np.float32)
    counts[-1] = n - (m - 1) * k
    return padded.reshape(m, k, -1).sum(1) / counts[:, None]


def _pad(arrays: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = np.array([len(a) for a in arrays])
    out = np.zeros((len(arrays), lengths.max(), arrays[0].shape[1]), dtype=np.float32)
    for i, a in enumerate(arrays):
        out[i, :len(a)] = a
    return torch.from_numpy(out), torch.from_numpy(lengths)


def read_clip(store, r: int, norm: Normalizer | None) -> tuple[np.ndarray, np.ndarray]:
    """Clip ``r``'s audio and visual frames as float32, normalised with ``norm`` when given."""
    r = int(r)
    a = np.asarray(store.audio(r), dtype=np.float32)
    v = np.asarray(store.visual(r), dtype=np.float32)
    if norm is not None:
        a = norm.apply("audio", a, store.missing("audio", r))
        v = norm.apply("visual", v, store.missing("visual", r))
    return a, v


def make_batch(store, rows: np.ndarray, *, condition: Condition | None = None, trial_seed: int = 0,
               pool: tuple[int, int] = (1, 1), device: torch.device | str = "cpu",
               norm: Normalizer | None = None) -> Batch:
    """Reads, normalises, transforms, pools and pads the clips at ``rows`` of ``store``."""
    audios, visuals = [], []
    rates = (store.audio_rate, store.visual_rate)
    ids = store.manifest["clip_id"].to_numpy()
    for r in rows:
        a, v = read_clip(store, r, norm)
        if condition is not None and condition.kind != "full":
            a, v = condition.apply(a, v, rng=condition.rng(trial_seed, str(ids[r])), rates=rates)
        audios.append(pool_frames(a, pool[0]))
        visuals.append(pool_frames(v, pool[1]))
    audio, la = _pad(audios)
    visual, lv = _pad(visuals)
    labels = torch.from_numpy(np.asarray(store.labels[rows], dtype=np.int64))
    return Batch(audio.to(device), visual.to(device), la.to(device), lv.to(device), labels.to(device),
                 np.asarray(rows))


def batches(store, rows: np.ndarray, batch_size: int, *, generator: np.random.Generator | None = None,
            by_length: bool = False, **kwargs) -> Iterator[Batch]:
    """Yields batches over ``rows``: shuffled by ``generator`` if given, or grouped by
    length (less padding, faster evaluation) if ``by_length``."""
    rows = np.asarray(rows)
    if generator is not None:
        rows = rows[generator.permutation(len(rows))]
    elif by_length:
        rows = rows[np.argsort(store.manifest["audio_frames"].to_numpy()[rows], kind="stable")]
    for start in range(0, len(rows), batch_size):
        yield make_batch(store, rows[start:start + batch_size], **kwargs)
