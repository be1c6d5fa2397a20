"""Face-detection rates on your own images, per group (e.g. per skin tone, lighting or camera).

Classic detectors can miss faces with dark skin tones where they find light ones; measure the
detector you prepare with on images like your corpus before trusting its features:

    python benchmarks/face_detection_rates.py IMAGES/ [--detector haar|mtcnn] [--mtcnn-weights DIR]

IMAGES/ holds one sub-folder per group (``IMAGES/dark/*.jpg``, ``IMAGES/light/*.png``, ...), or
images directly (one group).  Every image is expected to show one face.  Prints, per group, the
images, faces found and the rate; ``--csv FILE`` also writes one row per image.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from avbench.data.faces import make_detector

EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def load_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images", type=Path)
    ap.add_argument("--detector", default="haar", choices=["haar", "mtcnn"])
    ap.add_argument("--mtcnn-weights", default=None)
    ap.add_argument("--csv", type=Path, default=None)
    args = ap.parse_args()
    detector = make_detector(args.detector, args.mtcnn_weights)
    files = sorted(p for p in args.images.rglob("*") if p.suffix.lower() in EXTS)
    if not files:
        raise SystemExit(f"{args.images}: no images ({', '.join(sorted(EXTS))}) found.")
    rows = []
    for f in files:
        group = f.parent.relative_to(args.images).as_posix() if f.parent != args.images else "(all)"
        box = detector([load_rgb(f)])[0]
        rows.append({"image": str(f), "group": group, "found": box is not None})
    print(f"detector: {detector.settings()}")
    print(f"{'group':<24} {'images':>7} {'found':>7} {'rate':>7}")
    for group in sorted({r["group"] for r in rows}):
        g = [r for r in rows if r["group"] == group]
        found = sum(r["found"] for r in g)
        print(f"{group:<24} {len(g):>7} {found:>7} {found / len(g):>7.1%}")
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["image", "group", "found"])
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
