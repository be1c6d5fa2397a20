"""MTCNN (Zhang et al., 2016), the paper's face detector, re-implemented in plain torch.

The layer names, shapes and the channel-last flatten before the dense layers
follow the ``pnet.pt``, ``rnet.pt``, ``onet.pt`` state dicts shipped in the
facenet-pytorch wheel, so those files load unchanged.  facenet-pytorch itself
pins torch < 2.3 and cannot be a dependency; avbench never downloads the
weights: the user gives the folder that holds them.

The cascade follows the usual MTCNN procedure: an image pyramid (scale factor
0.709, smallest face 20 px) through P-Net, non-maximum suppression (NMS),
box regression and squaring; candidates re-scored by R-Net at 24x24 and by
O-Net at 48x48 (thresholds 0.6, 0.7, 0.7).  Pixels are scaled as
``(x - 127.5) / 128``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avbench.validation import ValidationError

WEIGHT_FILES = ("pnet.pt", "rnet.pt", "onet.pt")
WHEEL_DIR = "facenet_pytorch/data"  # where the facenet-pytorch wheel keeps them
WHERE = ("MTCNN weights are the files pnet.pt, rnet.pt and onet.pt shipped inside the facenet-pytorch wheel "
         "(facenet_pytorch/data/ in the wheel from PyPI); pass the wheel itself (pip download "
         "facenet-pytorch==2.6.0 --no-deps) or a folder holding the three files. "
         "avbench never downloads weights.")


class PNet(nn.Module):
    """Proposal network: fully convolutional, 12x12 receptive field, stride 2."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), F.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """Refinement network on 24x24 crops."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = x.permute(0, 3, 2, 1).contiguous()  # the weights were trained with (W, H, C) flattening
        x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
        return self.dense5_2(x), F.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output network on 48x48 crops (box regression, landmarks, score)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), F.softmax(self.dense6_1(x), dim=1)


def _nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float, mode: str = "union") -> torch.Tensor:
    """Indices kept by greedy NMS; ``min`` divides the overlap by the smaller area (O-Net stage)."""
    x0, y0, x1, y1 = boxes.unbind(1)
    area = (x1 - x0 + 1) * (y1 - y0 + 1)
    order = scores.argsort(descending=True)
    keep = []
    while order.numel():
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = (torch.minimum(x1[i], x1[rest]) - torch.maximum(x0[i], x0[rest]) + 1).clamp(min=0)
        h = (torch.minimum(y1[i], y1[rest]) - torch.maximum(y0[i], y0[rest]) + 1).clamp(min=0)
        inter = w * h
        denom = torch.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        order = rest[inter / denom <= threshold]
    return torch.tensor(keep, dtype=torch.long)


def _regress(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    return boxes[:, :4] + reg * torch.stack([w, h, w, h], 1)


def _square(boxes: torch.Tensor) -> torch.Tensor:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    x0 = boxes[:, 0] + w * 0.5 - side * 0.5
    y0 = boxes[:, 1] + h * 0.5 - side * 0.5
    return torch.stack([x0, y0, x0 + side, y0 + side], 1)


def _crops(img: torch.Tensor, boxes: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Resized crops of ``img`` (3 x H x W, normalised) for each box (1-based, clipped as MTCNN does)."""
    _, h, w = img.shape
    b = boxes.trunc().int()
    x0, y0 = b[:, 0].clamp(min=1), b[:, 1].clamp(min=1)
    x1, y1 = b[:, 2].clamp(max=w), b[:, 3].clamp(max=h)
    out, kept = [], []
    for k in range(len(b)):
        if y1[k] > y0[k] - 1 and x1[k] > x0[k] - 1:
            patch = img[:, y0[k] - 1:y1[k], x0[k] - 1:x1[k]][None]
            out.append(F.interpolate(patch, size=(size, size), mode="area"))
            kept.append(k)
    if not out:
        return torch.zeros((0, 3, size, size)), torch.zeros(0, dtype=torch.long)
    return torch.cat(out), torch.tensor(kept, dtype=torch.long)


class MTCNN(nn.Module):
    """The three-stage cascade; ``__call__(frames)`` returns one box (or None) per RGB frame."""

    name = "mtcnn"

    def __init__(self, min_face: int = 20, thresholds: Sequence[float] = (0.6, 0.7, 0.7), factor: float = 0.709,
                 device: str = "cpu"):
        super().__init__()
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        self.min_face, self.thresholds, self.factor = min_face, tuple(thresholds), factor
        self.device = torch.device(device)
        self.weights_dir: str | None = None
        self.eval()

    @classmethod
    def from_dir(cls, weights_dir: str | os.PathLike | None, device: str = "cpu", **kwargs) -> "MTCNN":
        """Loads ``pnet.pt``, ``rnet.pt``, ``onet.pt`` (facenet-pytorch's state dicts) from one folder, or
        straight from the facenet-pytorch wheel file (``facenet_pytorch/data/`` inside it), so a user
        can pass the wheel ``pip download facenet-pytorch --no-deps`` fetched without unpacking it."""
        if weights_dir is None:
            raise ValidationError(f"The 'mtcnn' face detector needs --mtcnn-weights DIR. {WHERE}")
        source = Path(weights_dir)
        model = cls(device=device, **kwargs)
        for net, file in zip((model.pnet, model.rnet, model.onet), WEIGHT_FILES):
            path, state = _read_weights(source, file)
            load_exact(net, state, path)
        model.weights_dir = str(source.resolve())
        return model.to(model.device)

    def settings(self) -> dict:
        return {"detector": "mtcnn", "weights": self.weights_dir, "min_face": self.min_face,
                "thresholds": list(self.thresholds), "factor": self.factor}

    @torch.no_grad()
    def __call__(self, frames: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        return [self.detect(f) for f in frames]

    @torch.no_grad()
    def detect(self, frame: np.ndarray) -> np.ndarray | None:
        """The most confident face of one RGB frame as ``[x0, y0, x1, y1, score]``, or None."""
        img = torch.as_tensor(np.ascontiguousarray(frame), dtype=torch.float32, device=self.device)
        img = img.permute(2, 0, 1)
        h, w = img.shape[1:]
        norm = (img - 127.5) * 0.0078125
        # Stage 1: P-Net over the pyramid.
        m = 12.0 / self.min_face
        side, scale, found = min(h, w) * m, m, []
        while side >= 12:
            hs, ws = int(h * scale + 1), int(w * scale + 1)
            reg, prob = self.pnet(F.interpolate(norm[None], size=(hs, ws), mode="area"))
            ys, xs = torch.nonzero(prob[0, 1] >= self.thresholds[0], as_tuple=True)
            if len(ys):
                score = prob[0, 1, ys, xs]
                xy = torch.stack([xs, ys], 1).float()
                q1, q2 = ((2 * xy + 1) / scale).floor(), ((2 * xy + 12) / scale).floor()
                boxes = torch.cat([q1, q2, score[:, None], reg[0][:, ys, xs].T], 1)
                found.append(boxes[_nms(boxes[:, :4], boxes[:, 4], 0.5)])
            scale *= self.factor
            side *= self.factor
        if not found:
            return None
        boxes = torch.cat(found)
        boxes = boxes[_nms(boxes[:, :4], boxes[:, 4], 0.7)]
        bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        boxes = _square(boxes[:, :4] + boxes[:, 5:9] * torch.stack([bw, bh, bw, bh], 1))
        # Stage 2: R-Net.
        boxes = self._refine(self.rnet, norm, boxes, 24, self.thresholds[1])
        if boxes is None:
            return None
        boxes = _square(boxes)
        # Stage 3: O-Net.
        crops, kept = _crops(norm, boxes, 48)
        if not len(kept):
            return None
        reg, _, prob = self.onet(crops)
        score = prob[:, 1]
        ok = score > self.thresholds[2]
        if not ok.any():
            return None
        boxes, score = _regress(boxes[kept][ok], reg[ok]), score[ok]
        keep = _nms(boxes, score, 0.7, mode="min")
        best = keep[score[keep].argmax()]
        return torch.cat([boxes[best], score[best][None]]).cpu().numpy().astype(np.float32)

    def _refine(self, net, norm, boxes, size, threshold):
        crops, kept = _crops(norm, boxes, size)
        if not len(kept):
            return None
        reg, prob = net(crops)
        score = prob[:, 1]
        ok = score > threshold
        if not ok.any():
            return None
        boxes, reg, score = boxes[kept][ok], reg[ok], score[ok]
        keep = _nms(boxes, score, 0.7)
        return _regress(boxes[keep], reg[keep])


def _read_weights(source: Path, file: str) -> tuple[Path, dict]:
    """(where, state dict) of one weight file, from a folder or from inside a wheel (zip) file."""
    if source.suffix == ".whl" and source.is_file():
        import io
        import zipfile

        path = source / WHEEL_DIR / file
        try:
            with zipfile.ZipFile(source) as wheel:
                raw = io.BytesIO(wheel.read(f"{WHEEL_DIR}/{file}"))
        except KeyError:
            raise ValidationError(f"{path}: MTCNN weight file is missing from the wheel. {WHERE}") from None
        except (OSError, zipfile.BadZipFile) as exc:
            raise ValidationError(f"{source}: cannot be read as a wheel (zip) file ({exc}). {WHERE}") from None
    else:
        path = source / file
        if source.is_file():
            raise ValidationError(f"{source}: expected a folder holding {', '.join(WEIGHT_FILES)} or the "
                                  f"facenet-pytorch wheel (.whl). {WHERE}")
        if not path.is_file():
            raise ValidationError(f"{path}: MTCNN weight file is missing. {WHERE}")
        raw = path
    try:
        return path, torch.load(raw, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ValidationError(f"{path}: cannot be read as a torch state dict ({exc}).") from None


def load_exact(module: nn.Module, state: dict, path: Path) -> None:
    """Loads a state dict that must match ``module`` key for key and shape for shape, naming any difference."""
    if not isinstance(state, dict):
        raise ValidationError(f"{path}: expected a state dict (a mapping of parameter names to tensors). "
                              f"Got {type(state).__name__} instead.")
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        raise ValidationError(f"{path}: parameter names do not match {type(module).__name__}: missing "
                              f"{_some(missing)}; unexpected {_some(extra)}.")
    for k, v in own.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise ValidationError(f"{path}: {k} has shape {tuple(state[k].shape)}; {type(module).__name__} "
                                  f"expects {tuple(v.shape)}.")
    module.load_state_dict(state)


def _some(names: list[str], shown: int = 4) -> str:
    """Up to ``shown`` names and how many more: a 24-layer model's key list would fill a screen."""
    if not names:
        return "none"
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
