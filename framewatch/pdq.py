"""PDQ hashing shared by ingest (frames it samples) and scoring (banks, the check API).

One implementation, so the hash ingest attaches to a frame and the hash a bank stores for the
same picture can never drift apart.

PDQ first reduces the luma to 64x64 (two passes of a box filter a 128th of the side wide, then
the centre pixel of each 64th), then hashes those 4,096 values. pdqhash's C++ filters every
pixel of the frame for that (7-21 CPU ms a frame of the sample videos); only the rows and
columns around the 64x64 centres matter, so :func:`hash_rgb` and :func:`hash_luma` compute
the same tent-filtered samples from those alone in numpy (0.6-1.8 ms), then the DCT, median and
quality of that 64x64 as the C++ computes them (pdqhash gives the same bits and quality for a
64x64 input; it stays the hasher of ``full_frame``). On Meta's vPDQ reference frames both stay as
close to the reference as the full C++ path (``python benchmarks/pdq_agreement.py``, checked by
``tests/ingest/test_pdq_reference.py``). Shrinking the frame first (cv2 INTER_AREA to 512 or
256 px, then pdqhash) was measured and rejected: up to 44 and 60 bits from the reference.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import pdqhash

# Hashing a still at full size costs ~16 bytes a pixel of float buffers (a 36 Mpx photo: ~580
# MB). Larger stills are first shrunk, keeping the aspect, to this long side: the hash moves by
# 2-4 bits of 256 (less than the same picture at 1x vs 4x differs), the memory by 10x less.
# Meta's photo hasher does the same at 512 (pdqhashing.cpp, DOWNSAMPLE_DIMS), at 10-30 bits.
STILL_LONG_SIDE = 2048

PDQ_SIDE = 64  # PDQ's reduced image is 64x64
MIN_SIDE = 5  # PDQ gives smaller images the zero hash and quality 0
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # PDQ's RGB -> luma
# PDQ's DCT rows 1..16 over 64 samples (pdqhashing.cpp dct_matrix_64): sqrt(2/64) cos(pi/128
# (i + 1)(2j + 1)), computed in double and stored as float, as the C++ does
_DCT16 = (
    np.sqrt(2.0 / PDQ_SIDE)
    * np.cos(np.pi / 2.0 / PDQ_SIDE * np.arange(1, 17)[:, None] * (2 * np.arange(PDQ_SIDE) + 1))
).astype(np.float32)


def hash_rgb(rgb: np.ndarray, *, full_frame: bool = False) -> tuple[str, int]:
    """PDQ hash (64 hex chars, bit 0 first, packed big-endian) and quality (0..100) of RGB
    pixels; OpenCV code passes ``bgr[:, :, ::-1]`` (the one entry, so orders cannot mix).

    ``full_frame`` hands every pixel to pdqhash's C++ instead of reducing to 64x64 here first
    (same filter, ~15x the CPU at 720p; ``ingest.pdq_full_frame``)."""
    h, w = rgb.shape[:2]
    if full_frame or min(h, w) < MIN_SIDE or (h, w) == (PDQ_SIDE, PDQ_SIDE):
        return _pdqhash(rgb)
    return _hash64(reduce64(rgb) @ LUMA)


def hash_luma(luma: np.ndarray, *, video_range: bool) -> tuple[str, int]:
    """:func:`hash_rgb` of a decoded frame from its 8-bit luma plane as it is (no RGB copy):
    ``video_range`` Y (16..235) is stretched to PDQ's 0..255 luma for the quality score
    (the bits do not depend on it)."""
    if min(luma.shape) < MIN_SIDE:
        return _pdqhash(np.repeat(luma[:, :, None], 3, axis=2))
    reduced = reduce64(luma)
    if video_range:
        reduced = (reduced - 16.0) * (255.0 / 219.0)
    return _hash64(reduced)


def reduce64(pixels: np.ndarray) -> np.ndarray:
    """PDQ's two-pass box ("tent") filter and decimation of (H, W) or (H, W, 3) pixels,
    computed only at the 64x64 points it keeps: (64, 64) or (64, 64, 3) floats. The filter is
    linear, so the luma of the result of RGB is the result of the luma: no float image of
    every pixel is made."""
    r_idx, r_w = _taps(pixels.shape[0])
    c_idx, c_w = _taps(pixels.shape[1])
    picked = pixels[r_idx].reshape(PDQ_SIDE, r_idx.shape[1], -1)  # 8-bit, cast inside einsum
    rows = np.einsum("ikm,ik->im", picked, r_w, dtype=np.float32, casting="unsafe")
    rows = rows.reshape((PDQ_SIDE, *pixels.shape[1:]))
    return np.einsum("ijk...,jk->ij...", rows[:, c_idx], c_w)


def _hash64(reduced: np.ndarray) -> tuple[str, int]:
    """Hash and quality of PDQ's 64x64 float luma (0..255), as Meta's C++ computes them from
    its 64x64 buffer (pdqhashing.cpp): the 16x16 low frequencies of the 2-D DCT without the DC
    term, each bit set where a coefficient is above their median (the 128th smallest, as its
    Torben median picks), and the image-domain quality. Bit for bit what pdqhash gives for the
    same 64x64 (``tests/ingest/test_pdq_reference.py``), in 0.024 ms against 0.176: handing it
    the buffer took two calls, each with an 8-bit RGB copy. Without that rounding a frame's
    hash moved 0-6 bits from the one those calls gave (the four sample videos)."""
    a = np.asarray(reduced, np.float32)
    coeffs = (_DCT16 @ a @ _DCT16.T).ravel()
    median = np.partition(coeffs, 127)[127]
    # bit i*16+j of the hash is coefficient (i, j); the hex runs from bit 255 down to bit 0
    hex_bits = np.packbits(coeffs[::-1] > median).tobytes().hex()
    return hex_bits, _quality(a)


def _quality(a: np.ndarray) -> int:
    """PDQ's quality: the sum of the 64x64's neighbour differences, each scaled to 0..100 and
    truncated (only clear gradients count), over 90, at most 100. float32 as in the C++."""
    scale, full = np.float32(100), np.float32(255)
    total = np.abs(np.trunc((a[:-1] - a[1:]) * scale / full)).sum(dtype=np.float64)
    total += np.abs(np.trunc((a[:, :-1] - a[:, 1:]) * scale / full)).sum(dtype=np.float64)
    return min(100, int(total) // 90)


@lru_cache(maxsize=32)
def _taps(n: int) -> tuple[np.ndarray, np.ndarray]:
    """For an axis of n pixels: (64, K) source indices and weights of PDQ's 64 samples.

    PDQ's box filter (pdq/cpp/downscaling) has a window of ceil(n/128) pixels, from
    ``window - (window+2)//2`` before to ``(window+2)//2 - 1`` after each pixel, truncated at
    the edges and averaged over what remains; it runs twice, then sample i is pixel
    ``int((i + 0.5) * n / 64)``.
    """
    window = (n + 2 * PDQ_SIDE - 1) // (2 * PDQ_SIDE)
    after = (window + 2) // 2 - 1
    before = window - after - 1

    def box(j: int) -> tuple[int, int]:
        return max(0, j - before), min(n, j + after + 1)

    weights = np.zeros((PDQ_SIDE, n))
    for i in range(PDQ_SIDE):
        lo, hi = box(int(((i + 0.5) * n) / PDQ_SIDE))
        for j in range(lo, hi):  # second pass at the sample, over first-pass outputs j
            lo2, hi2 = box(j)
            weights[i, lo2:hi2] += 1.0 / ((hi - lo) * (hi2 - lo2))
    support = [np.nonzero(row)[0] for row in weights]
    k = max(len(s) for s in support)
    start = np.minimum([s[0] for s in support], n - k)
    idx = start[:, None] + np.arange(k)[None, :]
    return idx, np.take_along_axis(weights, idx, axis=1).astype(np.float32)


def _pdqhash(rgb: np.ndarray) -> tuple[str, int]:
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
