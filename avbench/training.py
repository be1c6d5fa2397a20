"""Training regimes, fit() with dev-only model selection, prediction and metrics.

Sec. 4.3: Adam (lr 7.25e-4), learning-rate decay when the dev loss plateaus
(patience 5), gradient clipping 0.8, batch 32, 25 epochs, model selection on
the development loss: the cross-entropy of the model's prediction
(``model.predict``, for AuxFormer the mean of its three heads' logits, as the
released code selects), not the weighted training loss.  The test set is never
touched here.
Training state is saved after every epoch, so a killed run resumes where it
stopped and produces the same result as an uninterrupted one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from avbench.atomic import atomic_path
from avbench.checkpoint import load_checkpoint
from avbench.conditions import shift_frames, shift_stream
from avbench.devices import autocast
from avbench.faults import crash_point
from avbench.batching import Batch, WaitClock, batches
from avbench.models.blocks import set_recompute
from avbench.normalization import Normalizer
from avbench.profiles import Profile
from avbench.validation import DataError, check_choice

REGIMES = ("standard", "optimized")
OPTIMIZED_GROUPS = (0.2, 0.2)  # fractions of a batch with audio zeroed, visual zeroed (Sec. 3.6)


def regime_groups(batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the batch whose audio, resp. visual, the optimized regime zeroes.

    The batch is split at random into 20% / 20% / 60% (rounded), Sec. 3.6.
    """
    perm = rng.permutation(batch_size)
    n_a = int(round(OPTIMIZED_GROUPS[0] * batch_size))
    n_v = int(round(OPTIMIZED_GROUPS[1] * batch_size))
    return perm[:n_a], perm[n_a:n_a + n_v]


def apply_regime(regime: str, batch: Batch, rng: np.random.Generator) -> Batch:
    """Returns the training batch as the regime presents it to the model."""
    check_choice(regime, "regime", "training", REGIMES)
    if regime == "standard":
        return batch
    drop_a, drop_v = regime_groups(len(batch.rows), rng)
    audio, visual = batch.audio.clone(), batch.visual.clone()
    audio[torch.as_tensor(drop_a, dtype=torch.long, device=audio.device)] = 0
    visual[torch.as_tensor(drop_v, dtype=torch.long, device=visual.device)] = 0
    return Batch(audio, visual, batch.audio_lengths, batch.visual_lengths, batch.labels, batch.rows)


def random_shift(batch: Batch, max_ms: float, rates: tuple[float, float], rng: np.random.Generator) -> Batch:
    """Training-time misalignment: each clip gets one modality (audio or visual, drawn at random)
    shifted by a uniform draw in [-max_ms, +max_ms] ms, at the frame rate the model sees
    (``rates``: frames/s after pooling), within the clip's real length and zero-filled, as the
    ``shift`` test condition does (the same :func:`avbench.conditions.shift_stream`; positive: the
    modality lags)."""
    n = len(batch.rows)
    which = rng.integers(0, 2, size=n)  # 0: audio, 1: visual
    ms = rng.uniform(-max_ms, max_ms, size=n)
    audio, visual = batch.audio.clone(), batch.visual.clone()
    for i in range(n):
        x, length, rate = ((audio, batch.audio_lengths, rates[0]) if which[i] == 0
                           else (visual, batch.visual_lengths, rates[1]))
        L, k = int(length[i]), shift_frames(ms[i], rate)
        if k:
            x[i, :L] = shift_stream(x[i, :L], k)
    return Batch(audio, visual, batch.audio_lengths, batch.visual_lengths, batch.labels, batch.rows)


def total_loss(model, outputs: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """Eq. 6: the weighted sum of each output's cross-entropy."""
    return sum(w * F.cross_entropy(outputs[name], labels) for name, w in model.loss_weights.items())


def f1_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Micro-F1, macro-F1 and accuracy of single-label predictions.

    Macro-F1 averages over the classes present in either labels or predictions
    (scikit-learn's convention); micro-F1 equals accuracy for single-label data.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    classes = np.union1d(y_true, y_pred)
    f1 = []
    for c in classes:
        tp = np.sum((y_pred == c) & (y_true == c))
        denom = np.sum(y_pred == c) + np.sum(y_true == c)
        f1.append(2 * tp / denom if denom else 0.0)
    acc = float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")
    return {"micro_f1": acc, "macro_f1": float(np.mean(f1)) if f1 else float("nan"), "accuracy": acc}


class NonFiniteLoss(DataError):
    """Training produced a NaN or infinite loss; the unit is stopped and its resume point removed."""


def check_finite_loss(loss: torch.Tensor | float, *, epoch: int, batch: int | None, desc: str,
                      state_path: Path | None) -> None:
    """Stops a unit whose loss is NaN or infinite, naming the epoch and batch.

    Features are checked for NaN and inf before training, so a non-finite loss means the
    optimisation diverged.  Every later step would be NaN too, so the resume point is removed:
    it would only lead back here, and no weights or record of the unit are written.
    """
    value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
    if np.isfinite(value):
        return
    if state_path is not None:
        Path(state_path).unlink(missing_ok=True)
    at = f"batch {batch}" if batch is not None else "the dev evaluation"
    raise NonFiniteLoss(f"{desc or 'training'}: the loss became {value} at epoch {epoch}, {at}; the unit was "
                        "stopped and nothing of it was kept. Lower the learning rate or check the model's "
                        "options.")


@dataclass
class FitResult:
    state_dict: dict[str, torch.Tensor]
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def seconds_per_epoch(self) -> float:
        return float(np.mean([h["train_seconds"] for h in self.history])) if self.history else float("nan")


@torch.no_grad()
def dev_scores(model, store, rows, profile: Profile, device, norm: Normalizer | None = None) -> dict[str, float]:
    """The dev pass of an epoch: the loss selection reads and the F1 scores the training curves show.

    ``dev_loss`` is the mean cross-entropy of ``model.predict`` (the scored logits) over the dev
    rows; ``dev_micro_f1`` and ``dev_macro_f1`` score the argmax of the same logits
    (:func:`f1_scores`), so recording them costs no second forward pass and changes nothing
    selection sees.
    """
    model.eval()
    total, n, preds, labels = 0.0, 0, [], []
    for b in batches(store, rows, profile.eval_batch_size, by_length=True, pool=profile.frame_pool, device=device,
                     norm=norm):
        with autocast(device, profile.precision):
            logits = model.predict(model(*b.inputs())).float()
        total += float(F.cross_entropy(logits, b.labels, reduction="sum"))
        n += len(b.rows)
        preds.append(logits.argmax(-1).cpu().numpy())
        labels.append(b.labels.cpu().numpy())
    f1 = f1_scores(np.concatenate(labels), np.concatenate(preds)) if preds else {}
    return {"dev_loss": total / max(n, 1), "dev_micro_f1": f1.get("micro_f1", float("nan")),
            "dev_macro_f1": f1.get("macro_f1", float("nan"))}


def fit(model, store, train_rows: np.ndarray, dev_rows: np.ndarray, *, regime: str, profile: Profile,
        seed: int, device: torch.device, state_path: Path | None = None, progress: bool = True,
        desc: str = "", train_shift_ms: float = 0.0, norm: Normalizer | None = None,
        on_epoch: Callable[[dict[str, Any]], None] | None = None) -> FitResult:
    """Trains ``model`` and returns the weights with the lowest dev loss.

    Args:
        model: An :class:`~avbench.models.AVModel` (already initialised from ``seed``).
        store: The feature store.
        train_rows, dev_rows: Store rows of the split's train and dev partitions.
        regime: ``standard`` or ``optimized``.
        profile: Optimiser, schedule and batching settings.
        seed: Seeds batch order, regime groups and dropout.
        device: Where to train.
        state_path: Where to save the per-epoch state; an existing file is resumed.
        progress: Show a progress bar per epoch.
        desc: Label of the progress bar.
        train_shift_ms: If positive, each training clip also gets one modality shifted at random
            by up to this many ms (:func:`random_shift`), after the regime; 0 draws nothing, so
            runs without shifts are unchanged.
        norm: The trial's z-normalisation (training-partition statistics), applied to train and
            dev clips; None reads features as stored.
        on_epoch: Called with each finished epoch's history entry (a worker's progress line,
            where a progress bar would interleave with other workers').

    ``history[i]`` holds the epoch's mean training loss (``train_loss``, Eq. 6), the learning rate
    after the scheduler's step (``lr``) and the scores of :func:`dev_scores` (``dev_loss``, which
    selects, and ``dev_micro_f1`` / ``dev_macro_f1``, which only the training curves read).
    ``history[i]["train_seconds"]`` times the training loop only (reading and batching the
    training clips, forward, backward, optimiser step), not the dev evaluation nor the
    checkpoint; :attr:`FitResult.seconds_per_epoch` is its mean over the epochs.
    ``history[i]["data_wait_seconds"]`` is the part of it the loop spent waiting for a batch
    (batches are prepared by a background thread while the model computes).
    The profile's ``batching`` orders the batches, its ``precision`` sets autocast and its
    ``memory`` whether attention layers are recomputed in the backward pass.
    """
    check_choice(regime, "regime", "fit", REGIMES)
    set_recompute(model, profile.memory == "lean")  # batching, precision and memory: checked by Profile
    autocast(device, profile.precision)  # refuses a precision the device cannot use, before any work
    scaler = torch.amp.GradScaler("cuda") if profile.precision == "fp16" else None
    rates = (store.audio_rate / profile.frame_pool[0], store.visual_rate / profile.frame_pool[1])
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=profile.lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=profile.lr_factor,
                                                       patience=profile.lr_patience)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    st: dict[str, Any] = {"epoch": 0, "best_loss": float("inf"), "best_epoch": -1, "bad_epochs": 0,
                          "history": [], "best_state": None}
    if state_path is not None and state_path.exists():
        saved = load_checkpoint(state_path)  # on the CPU, as RNG states must be
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        rng.bit_generator.state = saved["rng"]
        torch.set_rng_state(saved["torch_rng"])
        if scaler is not None and saved.get("scaler"):
            scaler.load_state_dict(saved["scaler"])
        if device.type == "cuda" and saved.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"], device)
        st = saved["progress"]
    patience = profile.early_stop if profile.early_stop is not None else float("inf")
    while st["epoch"] < profile.epochs and st["bad_epochs"] < patience:
        model.train()
        start, total, n = time.perf_counter(), 0.0, 0
        it = batches(store, train_rows, profile.batch_size, generator=rng, batching=profile.batching,
                     pool=profile.frame_pool, device=device, norm=norm)
        fed = WaitClock(it)
        bar = tqdm(fed, total=-(-len(train_rows) // profile.batch_size), leave=False,
                   disable=None if progress else True,  # None: no bar when stderr is not a terminal
                   desc=f"{desc} epoch {st['epoch'] + 1}/{profile.epochs}")
        for i, batch in enumerate(bar, 1):
            batch = apply_regime(regime, batch, rng)
            if train_shift_ms > 0:
                batch = random_shift(batch, train_shift_ms, rates, rng)
            with autocast(device, profile.precision):
                outputs = model(*batch.inputs())
            loss = total_loss(model, {k: o.float() for k, o in outputs.items()}, batch.labels)
            check_finite_loss(loss, epoch=st["epoch"] + 1, batch=i, desc=desc, state_path=state_path)
            opt.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), profile.grad_clip)
                opt.step()
            else:  # fp16: scaled loss, gradients unscaled before clipping
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), profile.grad_clip)
                scaler.step(opt)
                scaler.update()
            total += loss.item() * len(batch.rows)
            n += len(batch.rows)
            bar.set_postfix(loss=f"{total / n:.3f}")
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_seconds = time.perf_counter() - start
        it.close()
        dev = dev_scores(model, store, dev_rows, profile, device, norm)
        dl = dev["dev_loss"]
        check_finite_loss(dl, epoch=st["epoch"] + 1, batch=None, desc=desc, state_path=state_path)
        sched.step(dl)
        st["history"].append({"epoch": st["epoch"] + 1, "train_loss": total / max(n, 1), **dev,
                              "lr": opt.param_groups[0]["lr"], "train_seconds": train_seconds,
                              "data_wait_seconds": fed.seconds})
        if dl < st["best_loss"]:
            st.update(best_loss=dl, best_epoch=st["epoch"] + 1, bad_epochs=0,
                      best_state={k: v.detach().clone() for k, v in model.state_dict().items()})
        else:
            st["bad_epochs"] += 1
        st["epoch"] += 1
        if state_path is not None:
            with atomic_path(state_path) as tmp:
                torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                            "scheduler": sched.state_dict(), "rng": rng.bit_generator.state,
                            "torch_rng": torch.get_rng_state(),
                            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                            "scaler": scaler.state_dict() if scaler is not None else None,
                            "progress": st}, tmp)
        if on_epoch is not None:  # after the state is saved: what it reports is what a resume starts from
            on_epoch(st["history"][-1])
        if state_path is not None:
            crash_point("epoch")
    return FitResult(st["best_state"], st["best_epoch"], st["history"])


@dataclass(frozen=True)
class Predictions:
    """What scoring a model on some rows gives, per row in the order asked for.

    Attributes:
        pred: The predicted class: the arg-max of the logits ``model.predict`` returns.
        label: The true class.
        probs: The softmax of those logits (rows x classes, float64), for calibration metrics.
    """

    pred: np.ndarray
    label: np.ndarray
    probs: np.ndarray


@torch.no_grad()
def predict(model, store, rows: np.ndarray, *, profile: Profile, device, condition=None,
            trial_seed: int = 0, norm: Normalizer | None = None) -> Predictions:
    """Predicted class, true label and class probabilities per row (in ``rows`` order) under a test
    condition.

    The class is the arg-max of the logits themselves, not of their softmax: a softmax in floating
    point can round two close logits to one probability, and the prediction must not depend on that.
    The softmax is taken in float32 and stored as float64, whatever the autocast precision.
    """
    model.eval()
    preds = np.empty(len(rows), dtype=np.int64)
    probs = np.empty((len(rows), len(store.label_names)), dtype=np.float64)  # a model's logits fit the store
    pos = {r: i for i, r in enumerate(rows)}
    for b in batches(store, rows, profile.eval_batch_size, by_length=True, pool=profile.frame_pool,
                     device=device, condition=condition, trial_seed=trial_seed, norm=norm):
        with autocast(device, profile.precision):
            logits = model.predict(model(*b.inputs()))
        at = [pos[r] for r in b.rows]
        preds[at] = logits.argmax(-1).cpu().numpy()
        probs[at] = torch.softmax(logits.float(), -1).cpu().numpy()
    return Predictions(preds, np.asarray(store.labels[rows]), probs)
