"""Per-sample work: thumbnail JPEG and PDQ hash of a decoded frame or a pushed image."""

from __future__ import annotations

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from framewatch import pdq


def photo_pdq(rgb: np.ndarray) -> tuple[str, int]:
    """PDQ of a pushed still image, with bounded memory (video frames use ``pdq.hash_rgb``)."""
    return pdq.hash_rgb(pdq.shrink_still(rgb))


# 8-bit formats whose first plane is the luma at full size: the scene signature reads it as is
_LUMA_FIRST = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p",
                         "nv12", "nv21"})  # fmt: skip
_JPEG_RANGE = 2  # AVCOL_RANGE_JPEG: full-range luma (0..255); otherwise video range 16..235
SIGNATURE_SIDE = 32
SIGNATURE_GRID = 4 * SIGNATURE_SIDE  # pixels read a side: 16 a cell


def _luma_plane(frame: av.VideoFrame) -> np.ndarray | None:
    """The frame's 8-bit luma plane as an array over the decoder's buffer (no copy), or None
    for formats without one (RGB, 10-bit...)."""
    if frame.format.name not in _LUMA_FIRST:
        return None
    plane = frame.planes[0]
    luma = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return luma[:, : plane.width]


def frame_pdq(frame: av.VideoFrame, *, full_frame: bool = False) -> tuple[str, int]:
    """PDQ hash and quality of a decoded frame: from its luma plane as decoded (no RGB copy of
    the frame); ``full_frame`` (``ingest.pdq_full_frame``) converts it to RGB and hands every
    pixel to pdqhash instead. Both stay close to Meta's vPDQ reference (docs/ingest.md)."""
    luma = None if full_frame else _luma_plane(frame)
    if luma is None:
        return pdq.hash_rgb(frame.to_ndarray(format="rgb24"), full_frame=full_frame)
    full_range = frame.color_range == _JPEG_RANGE or frame.format.name.startswith("yuvj")
    return pdq.hash_luma(luma, video_range=not full_range)


def scene_signature(frame: av.VideoFrame) -> np.ndarray:
    """A 32x32 8-bit grey thumbnail for scene-cut checks, from the decoded luma plane: a
    128x128 grid of its pixels (nearest, read in place), then each 4x4 cell averaged. Both
    resizes take OpenCV's fast paths: ~25 us at 720p against ~90 for an area average of every
    5th pixel, whose 144x256 -> 32x32 is a non-integer ratio (5 checks a stream-second). Kept
    8-bit: :class:`~ingest.sampling.SceneCutDetector` compares two in one OpenCV call."""
    luma = _luma_plane(frame)
    if luma is None:
        luma = frame.to_ndarray(format="gray")
    grid = cv2.resize(luma, (SIGNATURE_GRID, SIGNATURE_GRID), interpolation=cv2.INTER_NEAREST)
    return cv2.resize(grid, (SIGNATURE_SIDE, SIGNATURE_SIDE), interpolation=cv2.INTER_AREA)


def thumbnail_size(width: int, height: int, short_side: int) -> tuple[int, int] | None:
    """(width, height) with the short side at most `short_side`, or None: keep it (never
    upscaled)."""
    scale = short_side / min(height, width)
    if scale >= 1.0:
        return None
    return max(1, round(width * scale)), max(1, round(height * scale))


def thumbnail_jpeg(rgb: np.ndarray, short_side: int, quality: int = 85) -> bytes:
    """A JPEG whose short side is at most `short_side` (never upscaled)."""
    h, w = rgb.shape[:2]
    size = thumbnail_size(w, h, short_side)
    if size is not None:
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return _jpeg(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), quality)


class Thumbnailer:
    """:func:`thumbnail_jpeg` of one stream's decoded frames: scaled in the frame's own pixel
    format (YUV planes, area filter), then converted to BGR at the small size; no full-size RGB
    copy. Two swscale passes, because one that scales and converts at once takes its slow path
    (3.6-4.0 against 1.55-1.76 CPU ms a 720p thumbnail with its JPEG, docs/ingest.md). Both
    passes keep their swscale context from frame to frame: ``VideoFrame.reformat`` makes new
    ones for every frame, a third of a thumbnail's cost. One per stream (one decode thread).

    ``threads`` is swscale's (``ingest.decode_threads``; 0: one per core): PyAV's default
    starts a thread per core for each of the two contexts, which wakes them for every
    thumbnail and costs more CPU than it saves where streams already share out the cores."""

    def __init__(self, short_side: int, quality: int = 85, *, threads: int = 1) -> None:
        self.short_side = short_side
        self.quality = quality
        self.threads = threads
        self._scale = VideoReformatter()
        self._to_bgr = VideoReformatter()

    def __call__(self, frame: av.VideoFrame) -> bytes:
        size = thumbnail_size(frame.width, frame.height, self.short_side)
        if size is not None:
            frame = self._scale.reformat(frame, width=size[0], height=size[1],
                                         interpolation="AREA", threads=self.threads)  # fmt: skip
        bgr = self._to_bgr.reformat(frame, format="bgr24", threads=self.threads)
        return _jpeg(bgr.to_ndarray(), self.quality)


def frame_thumbnail_jpeg(frame: av.VideoFrame, short_side: int, quality: int = 85) -> bytes:
    """One frame's thumbnail (a stream's frames go through its own :class:`Thumbnailer`)."""
    return Thumbnailer(short_side, quality)(frame)


def _jpeg(bgr: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - cv2 only fails on empty input
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
