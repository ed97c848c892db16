"""Per-sample work: thumbnail JPEG and PDQ hash of a decoded RGB frame."""

from __future__ import annotations

import cv2
import numpy as np
import pdqhash


def pdq(rgb: np.ndarray) -> tuple[str, int]:
    """PDQ hash (hex, most significant bit first) and quality (0..100) of an RGB frame."""
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return np.packbits(bits.astype(np.uint8)).tobytes().hex(), int(quality)


# Hashing a still at full size costs ~16 bytes a pixel of float buffers (a 36 Mpx photo: ~580
# MB). Larger stills are first shrunk, keeping the aspect, to this long side: the hash moves by
# 2-4 bits of 256 (less than the same picture at 1x vs 4x differs), the memory by 10x less.
# Meta's photo hasher does the same at 512 (pdqhashing.cpp, DOWNSAMPLE_DIMS), at 10-30 bits.
PHOTO_PDQ_LONG_SIDE = 2048


def photo_pdq(rgb: np.ndarray) -> tuple[str, int]:
    """PDQ of a pushed still image, with bounded memory (video frames use :func:`pdq`)."""
    h, w = rgb.shape[:2]
    scale = PHOTO_PDQ_LONG_SIDE / max(h, w)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return pdq(rgb)


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
