"""Face detection and cropping: one box per frame, or none, never a silent guess.

Two detectors:

* ``haar`` (the default): OpenCV's frontal-face Haar cascade, which ships
  inside the ``opencv-python-headless`` wheel, so it works offline with no
  weights file.  Frames are contrast-equalised (CLAHE) before detection.  It
  is NOT the paper's detector; classic cascades are known to miss faces with
  dark skin tones on some images, so avbench records the detection rate of
  every clip, tests the detector on drawn faces of five skin tones, and
  ships ``benchmarks/face_detection_rates.py`` to measure it on your images.
* ``mtcnn``: the paper's MTCNN (:mod:`avbench.data.mtcnn`), from the
  ``pnet.pt``, ``rnet.pt``, ``onet.pt`` weight files a user gives.

A frame where no face is found gets no crop; the pipeline writes a zero
feature vector for it and marks it missing in the store.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from avbench.validation import ValidationError

CROP_SIZE = 224
MARGIN = 0.2  # the square crop extends the box by this fraction of its longer side


def crop_faces(frames: Sequence[np.ndarray], boxes: Sequence[np.ndarray | None], size: int = CROP_SIZE,
               margin: float = MARGIN) -> np.ndarray:
    """Square crops around each box, resized to ``size x size`` RGB uint8 (frames without a box skipped).

    The square is centred on the box, ``(1 + margin)`` times its longer side;
    the parts outside the frame are black.  Returns ``(n_boxes, size, size, 3)``.
    """
    crops = []
    for frame, box in zip(frames, boxes):
        if box is None:
            continue
        x0, y0, x1, y1 = (float(v) for v in box[:4])
        side = max(x1 - x0, y1 - y0) * (1 + margin)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
        s = max(int(round(side)), 1)
        h, w = frame.shape[:2]
        canvas = np.zeros((s, s, 3), np.uint8)
        sx0, sy0, sx1, sy1 = max(left, 0), max(top, 0), min(left + s, w), min(top + s, h)
        if sx1 > sx0 and sy1 > sy0:
            canvas[sy0 - top:sy1 - top, sx0 - left:sx1 - left] = frame[sy0:sy1, sx0:sx1]
        t = torch.from_numpy(canvas).permute(2, 0, 1)[None].float()
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        crops.append(t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy())
    return np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)


class HaarDetector:
    """OpenCV's frontal-face Haar cascade (shipped in the opencv-python-headless wheel); the largest
    face of each frame is kept."""

    name = "haar"

    def __init__(self, min_size: int = 40, scale_factor: float = 1.1, min_neighbors: int = 4,
                 detect_width: int = 320):
        try:
            import cv2
        except ImportError as exc:
            raise ImportError("The 'haar' face detector needs OpenCV: pip install 'avbench[media]' "
                              "(or pip install opencv-python-headless).") from exc
        self._cv2 = cv2
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ImportError(f"{path}: OpenCV's face cascade could not be loaded; reinstall opencv-python-headless.")
        self._clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
        self.min_size, self.scale_factor, self.min_neighbors = min_size, scale_factor, min_neighbors
        self.detect_width = detect_width  # wider frames are searched at this width (about 4x faster at 480x360)

    def settings(self) -> dict:
        return {"detector": "opencv haarcascade_frontalface_default + CLAHE", "opencv": self._cv2.__version__,
                "min_size": self.min_size, "scale_factor": self.scale_factor, "min_neighbors": self.min_neighbors,
                "detect_width": self.detect_width}

    def __call__(self, frames: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        out = []
        cv2 = self._cv2
        for frame in frames:
            grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
            scale = min(1.0, self.detect_width / grey.shape[1])
            if scale < 1.0:
                grey = cv2.resize(grey, (self.detect_width, int(round(grey.shape[0] * scale))),
                                  interpolation=cv2.INTER_AREA)
            grey = self._clahe.apply(grey)
            found = self._cascade.detectMultiScale(grey, self.scale_factor, self.min_neighbors,
                                                   minSize=(self.min_size, self.min_size))
            if len(found) == 0:
                out.append(None)
                continue
            x, y, w, h = max(found, key=lambda b: b[2] * b[3])
            out.append(np.array([x, y, x + w, y + h], np.float32) / scale)
        return out


def make_detector(name: str, weights: str | os.PathLike | None = None, device: str = "cpu"):
    """A detector by name: ``haar`` (no weights) or ``mtcnn`` (``weights`` = folder of pnet/rnet/onet.pt)."""
    if name == "haar":
        return HaarDetector()
    if name == "mtcnn":
        from avbench.data.mtcnn import MTCNN

        return MTCNN.from_dir(weights, device=device)
    raise ValidationError(f"The '--face-detector' option must be one of 'haar', 'mtcnn'. Got {name!r} instead.")
