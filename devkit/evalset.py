"""Builds the small labelled set `framewatch eval` can be tried on (devkit/data/eval).

safe/: the test photos Debian's `darknet` package ships (MIT option of its copyright file),
shrunk to a 640 px long side, and two nearly flat wall frames of the doorknob sample video as
ingest samples them (the case the quality gate is for). sexual/: synthetic skin-toned shapes
painted on that wall, which the built-in models score high. They are stand-ins: no registry
package ships a picture a moderation model should flag, so this set shows that `eval` works,
not how accurate the models are on real content.

    apt-get download darknet && dpkg-deb -x darknet_*.deb x
    python -m devkit.evalset x/usr/share/darknet/data devkit/data/eval
"""

from __future__ import annotations

import sys
from pathlib import Path

import av
import cv2
import numpy as np

from devkit.testdata import video
from framewatch.pdq import hash_rgb

DARKNET = ["dog", "eagle", "giraffe", "horses", "kite", "person", "scream"]


def skin_composite(base: np.ndarray, seed: int) -> np.ndarray:
    """Six skin-toned ellipses with darker outlines on a copy of a BGR image."""
    img = base.copy()
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    for _ in range(6):
        for colour, thick in (((120, 150, 210), -1), ((90, 110, 170), 3)):
            centre = (int(rng.integers(50, w - 50)), int(rng.integers(50, h - 50)))
            axes = (int(rng.integers(40, 150)), int(rng.integers(60, 200)))
            cv2.ellipse(img, centre, axes, float(rng.integers(0, 180)), 0, 360, colour, thick)
    return img


def doorknob_samples() -> list[tuple[np.ndarray, int]]:
    """The doorknob video at 1 sample/s as ingest sends it: a BGR thumbnail (384 px short
    side) and the PDQ quality of the full frame."""
    out = []
    with av.open(str(video("doorknob-hd-no-bar.mp4"))) as c:
        due = 0.0
        for f in c.decode(video=0):
            if f.time is not None and f.time + 1e-6 >= due:
                rgb = f.to_ndarray(format="rgb24")
                _, q = hash_rgb(rgb)
                small = cv2.resize(rgb[:, :, ::-1], (683, 384), interpolation=cv2.INTER_AREA)
                out.append((small, q))
                due += 1.0
    return out


def _shrink(img: np.ndarray, side: int = 640) -> np.ndarray:
    f = side / max(img.shape[:2])
    if f >= 1:
        return img
    size = (round(img.shape[1] * f), round(img.shape[0] * f))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def build(darknet_data: Path, out: Path) -> None:
    (out / "safe").mkdir(parents=True, exist_ok=True)
    (out / "sexual").mkdir(parents=True, exist_ok=True)
    jpg = [cv2.IMWRITE_JPEG_QUALITY, 85]
    for name in DARKNET:
        img = cv2.imread(str(darknet_data / f"{name}.jpg"))
        if img is None:
            raise SystemExit(f"{darknet_data / name}.jpg missing: extract Debian's darknet")
        cv2.imwrite(str(out / "safe" / f"darknet-{name}.jpg"), _shrink(img), jpg)
    walls = [img for img, q in doorknob_samples() if q < 50]
    for i, img in enumerate(walls):
        cv2.imwrite(str(out / "safe" / f"doorknob-wall-{i}.jpg"), img, jpg)
    for seed in range(4):
        cv2.imwrite(str(out / "sexual" / f"composite-{seed}.jpg"),
                    skin_composite(walls[0], seed), jpg)  # fmt: skip


if __name__ == "__main__":
    build(Path(sys.argv[1]), Path(sys.argv[2]))
