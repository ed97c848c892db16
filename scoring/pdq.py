"""PDQ hashing (pdqhash) and hex <-> uint64-word conversions used by the banks."""

from __future__ import annotations

import cv2
import numpy as np
import pdqhash

from scoring.errors import BankError


def compute(bgr: np.ndarray) -> tuple[str, int]:
    """PDQ of a BGR image as 64 hex chars (bit 0 first, packed big-endian) + quality 0-100."""
    bits, quality = pdqhash.compute(np.ascontiguousarray(bgr[:, :, ::-1]))
    return np.packbits(bits.astype(np.uint8)).tobytes().hex(), int(quality)


# A still over this long side is shrunk (aspect kept) before hashing: full-size PDQ costs ~16
# bytes a pixel of float buffers, and the hash moves by only 2-4 bits of 256 (ingest's push API
# does the same, ingest/framedata.py).
STILL_LONG_SIDE = 2048


def compute_still(bgr: np.ndarray) -> tuple[str, int]:
    """:func:`compute` with bounded memory, for arbitrary uploaded images (the check API)."""
    h, w = bgr.shape[:2]
    scale = STILL_LONG_SIDE / max(h, w)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    return compute(bgr)


def to_words(hexes: list[str]) -> np.ndarray:
    """Hex hashes -> (N, 4) uint64 array; a malformed hash names itself."""
    out = np.zeros((len(hexes), 4), dtype=np.uint64)
    for i, h in enumerate(hexes):
        h = h.strip().lower()
        if len(h) != 64:
            raise BankError(f"PDQ hash {h[:70]!r} is not 64 hex characters")
        try:
            out[i] = np.frombuffer(bytes.fromhex(h), dtype=">u8")
        except ValueError:
            raise BankError(f"PDQ hash {h!r} is not hex") from None
    return out


def distances(words: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Hamming distance of one (4,) uint64 query to every row of (N, 4): vectorised popcount."""
    return np.bitwise_count(np.bitwise_xor(words, query)).sum(axis=1, dtype=np.uint16)
