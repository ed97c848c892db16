"""PDQ hashing (pdqhash) and hex <-> uint64-word conversions used by the banks."""

from __future__ import annotations

import numpy as np

from framewatch import pdq
from scoring.errors import BankError


def compute(bgr: np.ndarray) -> tuple[str, int]:
    """PDQ of an OpenCV (BGR) image, as the banks and the scorer hold them."""
    return pdq.hash_rgb(bgr[:, :, ::-1])


def compute_still(bgr: np.ndarray) -> tuple[str, int]:
    """:func:`compute` with bounded memory, for arbitrary uploaded images (the check API)."""
    return compute(pdq.shrink_still(bgr))


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
