"""Given weights (``avbench run --weights MODEL=PATH``): units scored under a protocol's conditions
without training.

A model trained elsewhere (with the authors' released code, or an avbench ``model.pt`` of another
run) is evaluated exactly as a trained unit is, condition by condition, on each trial's test clips.
What changes is where the unit's model comes from, so its key says so in two places: the regime is
:data:`PRETRAINED` (no avbench training regime made it) and the variant is ``weights-<sha256[:12]>``
of the file, so that ``results.csv`` and reports never mix such rows with trained ones and other
weights (another checksum) never reuse an earlier unit's scores.

The inputs are fed as the weights expect them (docs/fidelity.md, "Given weights"): the released
code z-normalises only the visual stream (``utils/dataset.py``, per dimension with training-set
statistics); its audio stream is wav2vec2's last hidden state, never normalised, so a released head
gets the visual stream normalised with the trial's training-partition statistics and the audio as
stored.  An avbench ``model.pt`` was trained on both streams normalised, and gets both.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from avbench.data.store import MODALITIES, sha256_file
from avbench.results import PRETRAINED, WEIGHTS_VARIANT_PREFIX  # the given units' regime and variant names
from avbench.validation import ValidationError

#: The two kinds of state dict a file may hold: the released ``net/avmodel_AF.py``'s, or avbench's own.
RELEASED, AVBENCH = "released", "avbench"
#: Which streams each kind of weights was trained on z-normalised (see the module docstring).
NORMALIZED_STREAMS = {RELEASED: ("visual",), AVBENCH: MODALITIES}
#: Why, as each unit's ``train.json`` records it next to the streams normalised.
NORMALIZATION_WHY = {
    RELEASED: "the released code z-normalises only the visual stream, per dimension with training-set statistics "
              "(utils/dataset.py); its audio stream, wav2vec2's last hidden state, reaches the head as extracted",
    AVBENCH: "avbench trained these weights on both streams z-normalised with training-partition statistics"}
#: The key that tells a released-code state dict apart (``from_official`` requires it too).
RELEASED_MARKER = "proj1.weight"
OWNER = "avbench run"


@dataclass(frozen=True)
class GivenWeights:
    """One ``--weights`` entry, read and checked once at planning and carried by value to workers.

    Attributes:
        model: The registered model the weights are for.
        path: Absolute path of the file.
        sha256: Its checksum: part of the unit's variant, and checked again when a worker loads it
            (a file changed after planning is refused, not scored under the old unit's name).
        format: :data:`RELEASED` or :data:`AVBENCH`.
        config: The model options the weights fit (read from a released state dict; the profile's
            and ``--set``'s for an avbench one).
        normalized: The streams z-normalised with the trial's training-partition statistics.
    """

    model: str
    path: str
    sha256: str
    format: str
    config: dict[str, Any] = field(default_factory=dict)
    normalized: tuple[str, ...] = MODALITIES

    @property
    def variant(self) -> str:
        return f"{WEIGHTS_VARIANT_PREFIX}{self.sha256[:12]}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"normalized": list(self.normalized)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "GivenWeights":
        return cls(**(dict(d) | {"config": dict(d["config"]), "normalized": tuple(d["normalized"])}))


def parse_weights(values: Iterable[str], run_models: Iterable[str]) -> dict[str, str]:
    """``MODEL=PATH`` entries as ``{model: path}``, each model one of the run's, once.

    Checked before any file is read, so that a typo costs nothing.
    """
    run_models, out = sorted(set(run_models)), {}
    for item in values:
        model, sep, path = str(item).partition("=")
        model, path = model.strip(), path.strip()
        if not sep or not model or not path:
            raise _bad(f"look like MODEL=PATH (e.g. auxformer=final_head.pt). Got {item!r} instead.")
        if model not in run_models:
            raise _bad(f"name a model of this run ({', '.join(run_models)}). Got {model!r} instead; add "
                       f"--model {model} to score it.")
        if model in out:
            raise _bad(f"name each model once. Got {model!r} twice ({out[model]!r} and {path!r}).")
        out[model] = path
    return out


def read_weights(model: str, path: str | os.PathLike, store, config: Mapping[str, Any]) -> GivenWeights:
    """Reads and checks one file: it exists, holds a state dict of ``model`` and fits the store.

    Args:
        model: A registered model of the run.
        path: The file (``torch.save`` of a state dict, read with ``weights_only=True``).
        store: The feature store (or planned corpus): class count and feature sizes.
        config: The options the run builds ``model`` with; for released weights only ``heads`` is
            taken from it (the width and depth are read from the state dict).

    Raises:
        ValidationError: naming ``--weights``, the file and what was expected.
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise _bad(f"name an existing file for {model!r}. Got {str(path)!r} instead (not found).")
    state = _load(path)
    released = RELEASED_MARKER in state
    fmt = RELEASED if released else AVBENCH
    config = _released_config(state, config) if released else dict(config)
    given = GivenWeights(model, str(path), sha256_file(path), fmt, config, NORMALIZED_STREAMS[fmt])
    build_model(given, store, state)  # fits, or says why not
    return given


def build_model(given: GivenWeights, store, state: Mapping[str, Any] | None = None) -> torch.nn.Module:
    """The model holding the given weights, on the CPU.

    The file is read again (and its checksum checked) unless ``state`` is passed: a worker loads
    exactly the bytes that were planned.
    """
    from avbench.models import count_parameters, create_model

    if state is None:
        path = Path(given.path)
        if not path.is_file() or sha256_file(path) != given.sha256:
            raise _bad(f"name a file that does not change during the run. Got {given.path!r}, which is "
                       f"{'gone' if not path.is_file() else 'not the file planned (its sha256 differs)'}.")
        state = _load(path)
    dims = dict(num_classes=len(store.label_names), audio_dim=store.audio_dim, visual_dim=store.visual_dim)
    expect = (f"a state dict of {given.model} for {dims['num_classes']} classes, audio {dims['audio_dim']} and "
              f"visual {dims['visual_dim']} (the store's sizes)")
    if given.format == RELEASED:
        from avbench.models.auxformer import from_official

        if given.model != "auxformer":
            raise _bad(f"be {expect}. Got {given.path!r} instead, a state dict of the released AuxFormer code "
                       f"('{RELEASED_MARKER}'), which only 'auxformer' loads.")
        try:
            return from_official(state, heads=given.config["heads"], **dims)
        except ValidationError as exc:
            raise _bad(f"be {expect}. Got {given.path!r} instead: {exc}") from None
    model = create_model(given.model, **dims, **given.config)
    if count_parameters(model) == 0:
        raise _bad(f"name a model with weights. Got {given.model!r}, which has no trainable parameters.")
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as exc:
        problem = " ".join(str(exc).split())[:600]
        raise _bad(f"be {expect}, built with {given.config} (--profile and --set), or one saved by the released "
                   f"net/avmodel_AF.py (keys such as '{RELEASED_MARKER}'). Got {given.path!r} instead: "
                   f"{problem}") from None
    return model


def describe(given: GivenWeights) -> dict[str, Any]:
    """What a unit's ``train.json`` records of its weights (``TrainRecord.weights``)."""
    return {"path": given.path, "sha256": given.sha256, "format": given.format,
            "normalized": list(given.normalized)}


def _released_config(state: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """The options a released state dict fits: width and depth from its tensors, ``heads`` from the run."""
    from avbench.models.auxformer import official_shape

    try:
        return official_shape(state) | {"heads": int(config.get("heads", 10))}
    except ValidationError as exc:
        raise _bad(f"be a complete state dict of the released net/avmodel_AF.py. Got one that is not: {exc}") from None


def _load(path: Path) -> Mapping[str, Any]:
    """The state dict in ``path``, or a message saying the file is not one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip or torch errors alike: the file is not a checkpoint
        raise _bad(f"name a checkpoint saved with torch.save (a state dict). Got {str(path)!r} instead, which "
                   f"cannot be read as one ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}).") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise _bad(f"name a state dict (a mapping of tensors). Got {str(path)!r} instead, which holds "
                   f"{type(state).__name__}.")
    return state


def _bad(rest: str) -> ValidationError:
    """The one shape of every refusal: the CLI restates it under ``--weights``."""
    return ValidationError(f"The 'weights' parameter of {OWNER} must {rest}", param="weights", owner=OWNER)
