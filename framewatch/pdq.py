"""PDQ hashing shared by ingest (frames it samples) and scoring (banks, the check API).

One implementation, so the hash ingest attaches to a frame and the hash a bank stores for the
same picture can never drift apart.
"""

from __future__ import annotations

import cv2
import numpy as np
import pdqhash

# Hashing a still at full size costs ~16 bytes a pixel of float buffers (a 36 Mpx photo: ~580
# MB). Larger stills are first shrunk, keeping the aspect, to this long side: the hash moves by
# 2-4 bits of 256 (less than the same picture at 1x vs 4x differs), the memory by 10x less.
# Meta's photo hasher does the same at 512 (pdqhashing.cpp, DOWNSAMPLE_DIMS), at 10-30 bits.
STILL_LONG_SIDE = 2048


def hash_rgb(rgb: np.ndarray) -> tuple[str, int]:
    """PDQ hash (64 hex chars, bit 0 first, packed big-endian) and quality (0..100) of RGB
    pixels; OpenCV code passes ``bgr[:, :, ::-1]`` (the one entry, so orders cannot mix)."""
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return np.packbits(bits.astype(np.uint8)).tobytes().hex(), int(quality)


def shrink_still(img: np.ndarray) -> np.ndarray:
    """The image with its long side at most STILL_LONG_SIDE, for hashing arbitrary uploads
    with bounded memory (video frames are hashed at full size, as Meta's vPDQ does)."""
    h, w = img.shape[:2]
    scale = STILL_LONG_SIDE / max(h, w)
    if scale >= 1.0:
        return img
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)
