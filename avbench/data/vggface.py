"""VGG-Face (VGG-16 layout) up to its first fully connected layer, fc6: 4096 values per face.

The paper embeds each face with a VGG-Face network fine-tuned on AffectNet
and reads fc6.  That fine-tune was never released, so avbench loads whatever
VGG-16-shaped weights the user gives (``--vggface-weights FILE``; never a
download) and records the file's sha256 and the settings in the store.  Two
key layouts load:

* ``vgg_face_dag`` (the common conversion of the original VGG-Face):
  ``conv1_1.weight`` ... ``conv5_3.bias``, ``fc6.*``, ``fc7.*``, ``fc8.*``.
  It expects RGB in 0-255 minus its mean (``VGG_FACE_DAG_MEAN``).
* torchvision's VGG-16: ``features.N.*``, ``classifier.N.*``; ImageNet
  normalisation by default.

The input normalisation follows the layout unless ``normalisation`` says
otherwise (``unit`` = the paper's [-1, 1] scaling, which belongs to the
authors' AffectNet fine-tune).  fc6 is read after its ReLU by default
(``fc6="relu"``) or before it (``fc6="linear"``).  These are not the paper's
exact features.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avbench.validation import ValidationError, check_choice

CONV_CHANNELS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
VGG_FACE_DAG_MEAN = (129.186279296875, 104.76238250732422, 93.59396362304688)  # RGB, 0-255
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # RGB mean and std, 0-1
NORMALISATIONS = ("vgg_face_dag", "imagenet", "unit")
WHERE = ("VGG-Face weights in the vgg_face_dag layout (vgg_face_dag.pth, converted from the Oxford VGG-Face "
         "release) or any VGG-16 state dict in torchvision's layout (e.g. your own AffectNet fine-tune); avbench "
         "never downloads weights. Without weights, --visual-embedder pixels runs the pipeline (not the paper's "
         "features).")


def _dag_names() -> list[str]:
    return [f"conv{b + 1}_{i + 1}" for b, block in enumerate(CONV_CHANNELS) for i in range(len(block))]


def _torchvision_indices() -> list[int]:
    """Index of each conv in torchvision's ``features`` Sequential (conv, ReLU, ..., MaxPool)."""
    out, i = [], 0
    for block in CONV_CHANNELS:
        for _ in block:
            out.append(i)
            i += 2
        i += 1
    return out


class VGGFace(nn.Module):
    """VGG-16 convolutions and fc6.  ``width`` scales every layer (1 = the real network; tests use less).

    The state dict uses vgg_face_dag's names (``conv1_1``, ..., ``fc6``).
    """

    def __init__(self, width: float = 1.0, fc6_dim: int = 4096, image_size: int = 224):
        super().__init__()
        self.image_size = image_size
        convs, c_in = [], 3
        for block in CONV_CHANNELS:
            for c in block:
                c_out = max(1, int(round(c * width)))
                convs.append(nn.Conv2d(c_in, c_out, 3, padding=1))
                c_in = c_out
        for name, conv in zip(_dag_names(), convs):
            self.add_module(name, conv)
        self.fc6 = nn.Linear(c_in * (image_size // 32) ** 2, fc6_dim)
        self.dim = fc6_dim

    def forward(self, x: torch.Tensor, relu: bool = True) -> torch.Tensor:
        names, k = _dag_names(), 0
        for block in CONV_CHANNELS:
            for _ in block:
                x = F.relu(getattr(self, names[k])(x))
                k += 1
            x = F.max_pool2d(x, 2, 2)
        x = self.fc6(x.flatten(1))
        return F.relu(x) if relu else x


def detect_layout(state: dict) -> str:
    if "conv1_1.weight" in state:
        return "vgg_face_dag"
    if "features.0.weight" in state:
        return "torchvision"
    raise ValidationError("expected a VGG-16 state dict in the vgg_face_dag layout (conv1_1.weight, ..., fc6.weight) "
                          "or torchvision's (features.0.weight, ..., classifier.0.weight); found keys "
                          f"{', '.join(sorted(state)[:4])}, ...")


def to_dag_layout(state: dict) -> dict:
    """Renames a state dict to vgg_face_dag names; fc7 and fc8 (and classifier.3/6) are dropped."""
    if detect_layout(state) == "vgg_face_dag":
        out = {k: v for k, v in state.items() if k.split(".")[0] in set(_dag_names()) | {"fc6"}}
        if "fc6.weight" in out and out["fc6.weight"].ndim == 4:  # fc6 stored as a 7x7 convolution
            out["fc6.weight"] = out["fc6.weight"].flatten(1)
        return out
    out = {}
    for name, idx in zip(_dag_names(), _torchvision_indices()):
        for p in ("weight", "bias"):
            key = f"features.{idx}.{p}"
            if key in state:
                out[f"{name}.{p}"] = state[key]
    for p in ("weight", "bias"):
        if f"classifier.0.{p}" in state:
            out[f"fc6.{p}"] = state[f"classifier.0.{p}"]
    return out


def _unwrap(obj):
    """Accepts a bare state dict or a checkpoint holding one under ``state_dict``/``model``."""
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                return obj[key]
    return obj


class VGGFaceEmbedder:
    """``--visual-embedder vggface``: fc6 of VGG-Face for each 224x224 face crop."""

    name = "vggface"
    modality = "visual"
    paper = False  # the paper's AffectNet fine-tune was never released

    def __init__(self, weights: str | os.PathLike | None = None, *, normalisation: str | None = None,
                 fc6: str = "relu", device: str = "cpu", batch_size: int = 32, width: float = 1.0,
                 fc6_dim: int = 4096):
        owner = "the vggface embedder"
        if weights is None:
            raise ValidationError(f"The 'vggface' visual embedder needs --vggface-weights FILE. {WHERE}")
        path = Path(weights)
        if not path.is_file():
            raise ValidationError(f"{path}: VGG-Face weight file is missing. {WHERE}")
        self.fc6 = check_choice(fc6, "fc6", owner, ("relu", "linear"))
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValidationError(f"{path}: cannot be read as a torch state dict ({exc}).") from None
        state = _unwrap(raw)
        if not isinstance(state, dict):
            raise ValidationError(f"{path}: expected a state dict. Got {type(state).__name__} instead.")
        try:
            layout = detect_layout(state)
        except ValidationError as exc:
            raise ValidationError(f"{path}: {exc}") from None
        self.layout = layout
        self.normalisation = check_choice(normalisation or ("vgg_face_dag" if layout == "vgg_face_dag" else "imagenet"),
                                          "normalisation", owner, NORMALISATIONS)
        self.model = VGGFace(width=width, fc6_dim=fc6_dim)
        from avbench.data.mtcnn import load_exact

        load_exact(self.model, to_dag_layout(state), path)
        self.dim = self.model.dim
        self.device = torch.device(device)
        self.model.to(self.device).eval()
        self.batch_size = batch_size
        self.weights = str(path.resolve())
        self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()

    def settings(self) -> dict:
        return {"embedder": "vggface", "weights": self.weights, "weights_sha256": self.sha256, "layout": self.layout,
                "normalisation": self.normalisation, "fc6": "after ReLU" if self.fc6 == "relu" else "before ReLU",
                "dim": self.dim, "paper_features": False}

    def normalise(self, crops: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(crops, dtype=torch.float32).permute(0, 3, 1, 2)
        if self.normalisation == "vgg_face_dag":
            return x - torch.tensor(VGG_FACE_DAG_MEAN).view(1, 3, 1, 1)
        if self.normalisation == "imagenet":
            mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET)
            return (x / 255.0 - mean) / std
        return x / 127.5 - 1.0

    @torch.no_grad()
    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """``(n, 224, 224, 3)`` uint8 RGB crops -> ``(n, dim)`` float32, in batches."""
        out = []
        for i in range(0, len(crops), self.batch_size):
            x = self.normalise(crops[i:i + self.batch_size]).to(self.device)
            out.append(self.model(x, relu=self.fc6 == "relu").float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
