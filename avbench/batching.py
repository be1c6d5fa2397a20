"""From feature-store rows to padded tensors.

Clips are read lazily from the memory-mapped store, one batch at a time, so a
4096-d visual corpus never has to fit in memory.  Order of operations per
clip: read -> z-normalisation with the trial's training statistics (missing
frames stay zero) -> test condition (on the original frames, seeded per clip)
-> frame pooling of the profile -> float32 -> zero padding.  Normalising first
makes a frame that a condition or regime zeroes a true zero, as in the paper.

Batches are assembled by a background thread while the model computes
(:class:`Prefetcher`): reading, normalising and padding are numpy work that
releases the GIL.  The order of the clips is drawn before the thread starts
and the thread draws no random numbers, so prefetching changes no result and
a resumed unit stays bit-identical.  On CUDA the thread pins each batch's
memory and the copy to the GPU is non-blocking.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

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

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "Batch":
        return Batch(fn(self.audio), fn(self.visual), fn(self.audio_lengths), fn(self.visual_lengths),
                     fn(self.labels), self.rows)

    def pin_memory(self) -> "Batch":
        return self._map(lambda t: t.pin_memory())

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))


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
               pool: tuple[int, int] = (1, 1), norm: Normalizer | None = None) -> Batch:
    """Reads, normalises, transforms, pools and pads the clips at ``rows`` of ``store``, on the CPU
    (:class:`Prefetcher` moves each batch to the device)."""
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
    return Batch(audio, visual, la, lv, labels, np.asarray(rows))


BUCKET_POOL = 32  # batches per pool sorted by length in bucket batching


def batch_rows(rows: np.ndarray, batch_size: int, *, generator: np.random.Generator | None = None,
               by_length: bool = False, batching: str = "random",
               lengths: np.ndarray | None = None) -> list[np.ndarray]:
    """The rows of each batch, in order.

    ``random`` (the paper's): one permutation of the rows drawn from ``generator``, cut into
    batches.  ``bucket`` (a departure from the paper, for speed): after that permutation the rows
    are cut into pools of ``BUCKET_POOL`` batches, each pool is sorted by ``lengths`` (clips of
    similar length share a batch, so little padding is computed), cut into batches, and the
    order of all batches is shuffled by ``generator``.  Without a generator, ``by_length`` sorts
    by length (evaluation: no padding, no randomness) and otherwise the order is kept.
    """
    rows = np.asarray(rows)
    if generator is not None:
        rows = rows[generator.permutation(len(rows))]
        if batching == "bucket":
            pool = BUCKET_POOL * batch_size
            groups = []
            for start in range(0, len(rows), pool):
                part = rows[start:start + pool]
                part = part[np.argsort(lengths[part], kind="stable")]
                groups += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
            return [groups[i] for i in generator.permutation(len(groups))]
    elif by_length:
        rows = rows[np.argsort(lengths[rows], kind="stable")]
    return [rows[start:start + batch_size] for start in range(0, len(rows), batch_size)]


class Prefetcher:
    """Iterates batches made by a background thread, ``depth`` ahead of the consumer.

    With ``depth=0`` batches are made in the caller's thread.  Errors of the thread are raised
    in the consumer; :meth:`close` (also on garbage collection) stops the thread.
    """

    _END = object()

    def __init__(self, make: Callable[[np.ndarray], Batch], groups: Iterable[np.ndarray], *, depth: int = 2,
                 device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self._make, self._groups = make, iter(groups)
        self._pin = self.device.type == "cuda"
        self._stop = threading.Event()
        self._queue: queue.Queue | None = None
        if depth > 0:
            self._queue = queue.Queue(maxsize=depth)
            self._thread = threading.Thread(target=self._work, name="avbench-prefetch", daemon=True)
            self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for group in self._groups:
                batch = self._make(group)
                if not self._put(batch.pin_memory() if self._pin else batch):
                    return
            self._put(self._END)
        except BaseException as e:  # handed to the consumer, raised there
            self._put(e)

    def __iter__(self) -> "Prefetcher":
        return self

    def __next__(self) -> Batch:
        if self._queue is None:
            group = next(self._groups, None)
            item = self._END if group is None else self._make(group)
        else:
            item = self._queue.get()
        if item is self._END:
            self.close()
            raise StopIteration
        if isinstance(item, BaseException):
            self.close()
            raise item
        return item.to(self.device, non_blocking=self._pin)

    def close(self) -> None:
        self._stop.set()

    def __del__(self) -> None:
        self.close()


class WaitClock:
    """Wraps an iterator and adds up the seconds its consumer spent waiting in ``next``:
    the time training would gain from faster data (``history[i]["data_wait_seconds"]``)."""

    def __init__(self, iterable: Iterable):
        self._it = iter(iterable)
        self.seconds = 0.0

    def __iter__(self) -> "WaitClock":
        return self

    def __next__(self):
        start = time.perf_counter()
        try:
            return next(self._it)
        finally:
            self.seconds += time.perf_counter() - start


def batches(store, rows: np.ndarray, batch_size: int, *, generator: np.random.Generator | None = None,
            by_length: bool = False, batching: str = "random", prefetch: int = 2,
            device: torch.device | str = "cpu", **kwargs) -> Prefetcher:
    """Batches over ``rows`` in the order of :func:`batch_rows`, made ``prefetch`` ahead by a
    background thread (0: in the caller's thread).  The order is drawn from ``generator`` here,
    before any batch is made.  ``kwargs`` go to :func:`make_batch`."""
    lengths = store.manifest["audio_frames"].to_numpy()
    groups = batch_rows(rows, batch_size, generator=generator, by_length=by_length, batching=batching,
                        lengths=lengths)
    return Prefetcher(lambda g: make_batch(store, g, **kwargs), groups, depth=prefetch, device=device)
