"""Self-supervised speech features (wav2vec2, HuBERT, WavLM) from a local checkpoint folder.

Registered as three audio extractors, ``wav2vec2``, ``hubert`` and ``wavlm``:
the name says which architecture the user expects, and a ``--audio-model``
folder whose ``config.json`` holds another ``model_type`` is refused (one
class serves all three; transformers picks the model class from the config).
Per clip:

* the waveform arrives mono at the model's rate (``sampling_rate`` of the
  checkpoint's ``preprocessor_config.json``, 16 kHz for all three), resampled
  by PyAV's ``AudioResampler`` (FFmpeg's libswresample) while decoding: the
  resampler every avbench audio path already uses, kept up by FFmpeg, with a
  proper anti-aliasing filter, so no second resampler and no extra dependency;
* the model's own input normalisation: the checkpoint's feature extractor
  (``do_normalize``: zero mean, unit variance over the whole clip);
* the model runs frozen, in inference mode; ``layer`` picks ``last``
  (``last_hidden_state``), a hidden state by index (0 = the transformer's
  input, N = after layer N) or ``mean`` (mean of every hidden state, input
  included);
* a clip longer than ``max_seconds`` runs in chunks of that length (a whole
  number of the model's frame steps) whose frames are concatenated; chunks of
  equal length run as one batch.  A final piece shorter than the model's
  receptive field joins the chunk before it.  Clips are not padded into
  batches with each other: padding changes the output of the group-norm
  models (wav2vec2-base), so batching across clips would change features.

``preset="auxformer-release"`` is the released AuxFormer code's audio model
(``net/modelWrapper.py``): a wav2vec2 checkpoint (wav2vec2-large-robust) with
encoder layers 12 and above deleted and ``last_hidden_state`` read, which for
this stable-layer-norm architecture is the encoder's final layer norm applied
after layer 12 (not ``hidden_states[12]`` of the full model).  ``weights``
loads a state dict of that pruned model on top (the release's
``final_wav2vec.pt``), refused when a key is missing or extra.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from avbench.data.checkpoints import check_folder, file_digests, load_model, transformers
from avbench.registry import EXTRACTORS
from avbench.validation import ValidationError, check_choice, check_float

PRESETS = ("auxformer-release",)
RELEASE_LAYERS = 12  # net/modelWrapper.py: del model.encoder.layers[12:]
OPTION = "--audio-model"


def parse_layer(layer) -> str | int:
    """``last``, ``mean`` or a non-negative hidden-state index (given as int or digits)."""
    if isinstance(layer, str) and layer in ("last", "mean"):
        return layer
    if isinstance(layer, (int, str)) and not isinstance(layer, bool) and str(layer).isdigit():
        return int(layer)
    raise ValidationError(f"The '--audio-layer' option must be last, mean or a hidden-state index (0, 1, ...). "
                          f"Got {layer!r} instead.")


def receptive_field(config) -> tuple[int, int]:
    """(samples one frame sees, samples between frames) of the convolutional feature encoder."""
    field, step = 1, 1
    for kernel, stride in zip(config.conv_kernel, config.conv_stride):
        field += (kernel - 1) * step
        step *= stride
    return field, step


class SpeechSSL:
    """Frame-level hidden states of a wav2vec2 / HuBERT / WavLM checkpoint (``frames x hidden_size``)."""

    modality = "audio"
    paper = False
    model_types: tuple[str, ...] = ("wav2vec2", "hubert", "wavlm")

    def __init__(self, model: str | os.PathLike | None = None, layer: str | int = "last", max_seconds: float = 30.0,
                 preset: str | None = None, weights: str | os.PathLike | None = None, device: str = "cpu",
                 precision: str = "fp32"):
        tf = transformers()
        from avbench.devices import autocast

        self.layer = parse_layer(layer)
        self.max_seconds = check_float(max_seconds, "max_seconds", "--max-seconds", low=0, low_open=True)
        self.preset = None if preset is None else check_choice(preset, "audio_preset", "--audio-preset", PRESETS)
        if self.preset and self.model_types != ("wav2vec2",):
            raise ValidationError(f"The '--audio-preset' option {preset!r} is a wav2vec2 setting; use it with "
                                  f"--audio-extractor wav2vec2. Got --audio-extractor {self.name} instead.")
        if self.preset and self.layer != "last":
            raise ValidationError(f"The '--audio-layer' option must be last under --audio-preset {preset} (the "
                                  f"release reads last_hidden_state). Got {layer!r} instead.")
        if weights is not None and not self.preset:
            raise ValidationError("The '--audio-weights' option loads a state dict of the release's pruned model; "
                                  "it needs --audio-preset auxformer-release.")
        self.folder = Path(model) if model is not None else None
        check_folder(self.folder, OPTION, self.model_types, "preprocessor_config.json")
        self.device, self.precision = torch.device(device), precision
        self._autocast = lambda: autocast(self.device, precision)
        self._autocast()  # a precision the device cannot run is refused now
        self.features = tf.AutoFeatureExtractor.from_pretrained(str(self.folder), local_files_only=True)
        self.model = load_model(tf.AutoModel, self.folder, OPTION)
        config = self.model.config
        if self.preset:
            self._prune_as_released(config)
        self.weights = None if weights is None else self._load_weights(Path(weights))
        n_states = len(self.model.encoder.layers) + 1
        if isinstance(self.layer, int) and self.layer >= n_states:
            raise ValidationError(f"The '--audio-layer' option must be at most {n_states - 1} for {self.folder} "
                                  f"({n_states - 1} layers; 0 = the transformer's input). Got {self.layer} instead.")
        self.model.to(self.device)
        self.sample_rate = int(self.features.sampling_rate)
        self.min_samples, self.step = receptive_field(config)
        self.rate = self.sample_rate / self.step
        self.dim = int(config.hidden_size)
        self.chunk = max(1, round(self.max_seconds * self.sample_rate / self.step)) * self.step
        self._version = tf.__version__

    def _prune_as_released(self, config) -> None:
        if config.model_type != "wav2vec2" or not config.do_stable_layer_norm:
            raise ValidationError(f"{self.folder}: --audio-preset auxformer-release needs a wav2vec2 checkpoint with "
                                  "do_stable_layer_norm (wav2vec2-large-robust, as the release).")
        if len(self.model.encoder.layers) <= RELEASE_LAYERS:
            raise ValidationError(f"{self.folder}: --audio-preset auxformer-release deletes encoder layers 12 and "
                                  f"above; this checkpoint has only {len(self.model.encoder.layers)} layers.")
        del self.model.encoder.layers[RELEASE_LAYERS:]

    def _load_weights(self, path: Path) -> dict:
        from avbench.data.store import sha256_file

        if not path.is_file():
            raise ValidationError(f"{path}: no such file (the '--audio-weights' option); expected the state dict "
                                  "of the release's pruned wav2vec2 (final_wav2vec.pt).")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input
            raise ValidationError(f"{path}: cannot be read as a torch state dict ({type(exc).__name__}: {exc}).") \
                from None
        if not isinstance(state, dict):
            raise ValidationError(f"{path}: expected a state dict (name -> tensor). Got {type(state).__name__} instead.")
        own = self.model.state_dict()
        missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or extra:
            raise ValidationError(f"{path}: does not fit the pruned wav2vec2 of {self.folder} (the '--audio-weights' "
                                  f"option): {len(missing)} keys missing{f' (e.g. {missing[0]})' if missing else ''}, "
                                  f"{len(extra)} extra{f' (e.g. {extra[0]})' if extra else ''}.")
        wrong = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
        if wrong:
            raise ValidationError(f"{path}: {wrong[0]} has shape {tuple(state[wrong[0]].shape)}, the model's is "
                                  f"{tuple(own[wrong[0]].shape)} (the '--audio-weights' option).")
        self.model.load_state_dict(state)
        return {"file": str(path.resolve()), "sha256": sha256_file(path)}

    def settings(self) -> dict:
        return {"checkpoint": str(self.folder.resolve()), "sha256": file_digests(self.folder),
                "model_type": self.model.config.model_type, "layer": self.layer,
                "hidden_layers": len(self.model.encoder.layers), "preset": self.preset,
                "state_dict": self.weights, "sample_rate": self.sample_rate, "frame_rate": self.rate,
                "do_normalize": bool(getattr(self.features, "do_normalize", False)),
                "max_seconds": self.max_seconds, "chunk_samples": self.chunk,
                "resampler": "PyAV AudioResampler (libswresample), mono", "precision": self.precision,
                "transformers": self._version}

    def pieces(self, n: int) -> list[tuple[int, int]]:
        """(start, stop) of each chunk of an ``n``-sample signal; a short tail joins the chunk before."""
        bounds = list(range(0, n, self.chunk)) + [n]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] < self.min_samples:
            del bounds[-2]
        return list(zip(bounds[:-1], bounds[1:]))

    @torch.inference_mode()
    def __call__(self, signal: np.ndarray, sample_rate: int | None = None, batch_size: int = 8) -> np.ndarray:
        """``frames x hidden_size`` float32 for a mono signal at the model's rate; no rows when the
        signal is shorter than the receptive field."""
        if sample_rate is not None and sample_rate != self.sample_rate:
            raise ValueError(f"expected audio at {self.sample_rate} Hz, got {sample_rate} Hz")
        if len(signal) < self.min_samples:
            return np.zeros((0, self.dim), np.float32)
        x = self.features(np.asarray(signal, np.float32), sampling_rate=self.sample_rate,
                          return_tensors="np")["input_values"][0]
        pieces = self.pieces(len(x))
        out: dict[int, np.ndarray] = {}
        by_length: dict[int, list[int]] = {}
        for i, (a, b) in enumerate(pieces):
            by_length.setdefault(b - a, []).append(i)
        for idx in by_length.values():
            for k in range(0, len(idx), batch_size):
                group = idx[k:k + batch_size]
                batch = torch.as_tensor(np.stack([x[slice(*pieces[i])] for i in group])).to(self.device)
                for i, h in zip(group, self._hidden(batch)):
                    out[i] = h
        return np.concatenate([out[i] for i in range(len(pieces))]).astype(np.float32)

    def _hidden(self, batch: torch.Tensor) -> np.ndarray:
        with self._autocast():
            result = self.model(batch, output_hidden_states=self.layer != "last")
        if self.layer == "last":
            h = result.last_hidden_state
        elif self.layer == "mean":
            h = torch.stack([s.float() for s in result.hidden_states]).mean(0)
        else:
            h = result.hidden_states[self.layer]
        return h.float().cpu().numpy()


def _named(name: str, types: tuple[str, ...]):
    return type(f"SpeechSSL_{name}", (SpeechSSL,), {"name": name, "model_types": types,
                                                    "__doc__": f"{name} hidden states; see SpeechSSL."})


WAV2VEC2, HUBERT, WAVLM = (_named("wav2vec2", ("wav2vec2",)), _named("hubert", ("hubert",)),
                           _named("wavlm", ("wavlm",)))
for _cls in (WAV2VEC2, HUBERT, WAVLM):
    EXTRACTORS.register(_cls.name, _cls)
