"""CLIP face embeddings: each face crop through a local ``CLIPVisionModel`` checkpoint.

Registered as the visual embedder ``clip``.  ``--visual-model DIR`` is a
Hugging Face checkpoint folder (``config.json`` of a ``clip_vision_model`` or a
whole ``clip`` model, its weights, and ``preprocessor_config.json``); avbench
loads it offline and refuses a folder of another architecture or weights that
do not fit the config.  Each 224x224 face crop is preprocessed by the
checkpoint's own image processor (resize, centre crop, its mean and std),
loaded slow (``use_fast=False``; ``backend="pil"`` in transformers 5): the fast processors need torchvision, which
does not install beside avbench's torch.  The embedding is ``pooler_output``
(the class token after the final layer norm) by default, or with ``layer=N``
the class token of hidden state N (0 = the embeddings).  Crops run in batches
of ``batch_size`` on the chosen device.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from avbench.data.checkpoints import check_folder, file_digests, load_model, transformers
from avbench.registry import EXTRACTORS
from avbench.validation import ValidationError

OPTION = "--visual-model"


class CLIPFaces:
    """``pooler_output`` (or one hidden state's class token) of a CLIP vision encoder, per face crop."""

    name = "clip"
    modality = "visual"
    paper = False

    def __init__(self, model: str | os.PathLike | None = None, layer: int | None = None, device: str = "cpu",
                 precision: str = "fp32", batch_size: int = 32):
        tf = transformers()
        from avbench.devices import autocast

        self.folder = Path(model) if model is not None else None
        check_folder(self.folder, OPTION, ("clip_vision_model", "clip"), "preprocessor_config.json")
        self.device, self.precision, self.batch_size = torch.device(device), precision, int(batch_size)
        self._autocast = lambda: autocast(self.device, precision)
        self._autocast()
        # the slow (PIL) processor: the fast one needs torchvision; transformers 5 names it backend="pil"
        slow = {"backend": "pil"} if int(tf.__version__.split(".")[0]) >= 5 else {"use_fast": False}
        self.processor = tf.AutoImageProcessor.from_pretrained(str(self.folder), local_files_only=True, **slow)
        self.model = load_model(tf.CLIPVisionModel, self.folder, OPTION)
        n_layers = int(self.model.config.num_hidden_layers)
        if layer is not None and (isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer <= n_layers):
            raise ValidationError(f"The '--visual-layer' option must be an integer from 0 to {n_layers} for "
                                  f"{self.folder} ({n_layers} layers). Got {layer!r} instead.")
        self.layer = layer
        self.model.to(self.device)
        self.dim = int(self.model.config.hidden_size)
        self._version = tf.__version__

    def settings(self) -> dict:
        return {"embedder": "clip", "checkpoint": str(self.folder.resolve()), "sha256": file_digests(self.folder),
                "output": "pooler_output" if self.layer is None else f"hidden_states[{self.layer}][:, 0]",
                "dim": self.dim, "processor": type(self.processor).__name__ + " (use_fast=False)",
                "precision": self.precision, "transformers": self._version, "paper_features": False}

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray) -> np.ndarray:
        if not len(crops):
            return np.zeros((0, self.dim), np.float32)
        out = []
        for i in range(0, len(crops), self.batch_size):
            pixels = self.processor(images=list(crops[i:i + self.batch_size]), return_tensors="pt")["pixel_values"]
            with self._autocast():
                result = self.model(pixel_values=pixels.to(self.device), output_hidden_states=self.layer is not None)
            h = result.pooler_output if self.layer is None else result.hidden_states[self.layer][:, 0]
            out.append(h.float().cpu().numpy())
        return np.concatenate(out).astype(np.float32)


EXTRACTORS.register("clip", CLIPFaces)
