"""Run profiles: the paper's exact configuration and scaled-down ones.

``paper`` is Sec. 4.3 to the letter.  ``quick`` shrinks the models (each
model declares its own quick settings), averages every 4 audio / 2 visual
frames before the model (62.5 -> 15.6 and 30 -> 15 frames/s; conditions are
applied to the original frames first), and trains fewer epochs over fewer
trials, so that a whole protocol runs on 2 CPU cores in minutes.  ``smoke`` is
smaller still, for tests and CI.  Every result records the profile that made it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from avbench.validation import ValidationError, check_choice

#: How batches are ordered (``random``: the paper's; ``bucket``: by length, batching.batch_rows).
BATCHINGS = ("random", "bucket")
#: The forward pass's precision (devices.autocast; below fp32 on CUDA only).
PRECISIONS = ("fp32", "bf16", "fp16")
#: Attention layers keep their activations (``fast``) or recompute them in the backward pass (``lean``).
MEMORY_MODES = ("fast", "lean")


@dataclass(frozen=True)
class Profile:
    """Training and model-scale settings shared by every unit of a run.

    Attributes:
        name: Profile name, recorded with every result.
        epochs: Maximum training epochs (25 in the paper).
        batch_size: Training batch size (32).
        lr: Adam learning rate (7.25e-4).
        lr_patience: Epochs without dev-loss improvement before the LR decays (5).
        lr_factor: LR decay factor on plateau.
        grad_clip: Gradient-norm clipping threshold (0.8).
        early_stop: Epochs without dev-loss improvement before training stops; ``None`` trains
            every epoch (the paper gives no patience; the released code trains all epochs and keeps
            the one with the lowest dev loss).
        frame_pool: (audio, visual) frames averaged into one before the model.
        seeds: Default number of trials (20 in the paper).
        scaled_models: Apply each model's ``quick`` overrides.
        model_overrides: Extra overrides applied to every model on top.
        eval_batch_size: Batch size at evaluation (no gradients, so larger).
        batching: ``random`` (the paper's random batches) or ``bucket`` (clips of similar length
            batched together, batch order shuffled by the seed: less padding, a departure from the
            paper; ``avbench.batching.batch_rows``).
        precision: ``fp32``, or ``bf16`` / ``fp16`` autocast on CUDA (fp16 with gradient scaling).
        memory: ``fast``, or ``lean``: attention layers recomputed in the backward pass
            (``avbench.models.blocks.set_recompute``), less memory for more time, same results.
    """

    name: str
    epochs: int = 25
    batch_size: int = 32
    lr: float = 7.25e-4
    lr_patience: int = 5
    lr_factor: float = 0.1
    grad_clip: float = 0.8
    early_stop: int | None = None
    frame_pool: tuple[int, int] = (1, 1)
    seeds: int = 20
    scaled_models: bool = False
    model_overrides: dict[str, Any] = field(default_factory=dict)
    eval_batch_size: int = 64
    batching: str = "random"
    precision: str = "fp32"
    memory: str = "fast"

    def __post_init__(self):
        for param, choices in (("batching", BATCHINGS), ("precision", PRECISIONS), ("memory", MEMORY_MODES)):
            check_choice(getattr(self, param), param, "Profile", choices)

    @property
    def key(self) -> str:
        """The name units are filed under: the profile's name, plus each non-default batching or
        precision (``quick-bucket``, ``paper-bf16``), since those train other weights.

        A profile that differs from the registered one of its name in any other training setting
        (``get_profile("quick").replace(epochs=3)``) is filed under ``<name>-<hash8>`` of those
        settings, so that it never reuses the registered profile's units (nor they its units).
        """
        name = f"{self.name}-{self.settings_hash()}" if self.modified else self.name
        parts = [name] + [v for v, default in ((self.batching, "random"), (self.precision, "fp32")) if v != default]
        return "-".join(parts)

    def _settings(self) -> dict[str, Any]:
        """The settings that change what a unit trains, beyond those ``key`` names one by one
        (batching, precision) and those that do not change results (name, default trials, memory)."""
        return {k: v for k, v in asdict(self).items()
                if k not in ("name", "seeds", "memory", "batching", "precision")}

    @property
    def modified(self) -> bool:
        """Whether this profile trains differently from the registered profile of its name."""
        registered = PROFILES.get(self.name)
        return registered is not None and _canonical(self._settings()) != _canonical(registered._settings())

    def settings_hash(self) -> str:
        """8 hex digits of the training settings (:meth:`_settings`)."""
        return hashlib.sha256(_canonical(self._settings()).encode()).hexdigest()[:8]

    def model_config(self, meta) -> dict[str, Any]:
        """The config a model gets under this profile (before a variant's own options)."""
        return {**(meta.quick if self.scaled_models else {}), **self.model_overrides}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> "Profile":
        return replace(self, **changes)


def _canonical(settings: dict[str, Any]) -> str:
    return json.dumps(settings, sort_keys=True, default=list)


PROFILES: dict[str, Profile] = {
    "paper": Profile("paper"),
    "quick": Profile("quick", epochs=12, early_stop=6, lr_patience=3, frame_pool=(4, 2), seeds=3,
                     scaled_models=True, lr=2e-3, eval_batch_size=128),
    "smoke": Profile("smoke", epochs=2, early_stop=2, lr_patience=1, frame_pool=(4, 2), seeds=2,
                     scaled_models=True, lr=2e-3, eval_batch_size=128),
}


def get_profile(name: str | Profile) -> Profile:
    if isinstance(name, Profile):
        return name
    if name not in PROFILES:
        raise ValidationError(f"The 'profile' parameter must be one of {', '.join(map(repr, PROFILES))}. "
                              f"Got {name!r} instead.")
    return PROFILES[name]
