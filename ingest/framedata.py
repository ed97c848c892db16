"""Per-sample work: thumbnail JPEG and PDQ hash of a decoded RGB frame."""

from __future__ import annotations

import cv2
import numpy as np

from framewatch import pdq


def photo_pdq(rgb: np.ndarray) -> tuple[str, int]:
    """PDQ of a pushed still image, with bounded memory (video frames use ``pdq.hash_rgb``)."""
    return pdq.hash_rgb(pdq.shrink_still(rgb))


def thumbnail_jpeg(rgb: np.ndarray, short_side: int, quality: int = 85) -> bytes:
    """A JPEG whose short side is at most `short_side` (never upscaled)."""
    h, w = rgb.shape[:2]
    scale = short_side / min(h, w)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:  # pragma: no cover - cv2 only fails on empty input
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
