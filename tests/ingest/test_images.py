"""Unit tests of pushed-image checks and per-frame work (no network)."""

from __future__ import annotations

import io

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from devkit.testdata import video
from framewatch import images
from framewatch.pdq import hash_rgb
from ingest import framedata


def encoded(fmt: str, size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "mime"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")]
)
def test_types_sniffed_from_bytes(fmt: str, mime: str) -> None:
    rgb, got = images.decode(encoded(fmt), max_bytes=10**6, max_pixels=10**6)
    assert got == mime and rgb.shape == (48, 64, 3)


def test_gif_and_text_refused_as_415() -> None:
    for body in (encoded("GIF"), b"<html>hello</html>"):
        with pytest.raises(images.ImageRejected) as exc:
            images.decode(body, max_bytes=10**6, max_pixels=10**6)
        assert exc.value.status == 415


def test_limits() -> None:
    with pytest.raises(images.ImageRejected, match="limit is 100") as exc:
        images.decode(encoded("PNG"), max_bytes=100, max_pixels=10**6)
    assert exc.value.status == 413
    with pytest.raises(images.ImageRejected, match="64x48") as exc:
        images.decode(encoded("PNG"), max_bytes=10**6, max_pixels=1000)
    assert exc.value.code == "too_many_pixels"


def test_truncated_jpeg_is_422() -> None:
    with pytest.raises(images.ImageRejected) as exc:
        images.decode(encoded("JPEG", (640, 480))[:300], max_bytes=10**6, max_pixels=10**6)
    assert exc.value.status == 422


def test_thumbnail_short_side_never_upscaled() -> None:
    big = np.zeros((1080, 1920, 3), np.uint8)
    img = Image.open(io.BytesIO(framedata.thumbnail_jpeg(big, 384)))
    assert img.size == (683, 384)
    small = np.zeros((100, 200, 3), np.uint8)
    assert Image.open(io.BytesIO(framedata.thumbnail_jpeg(small, 384))).size == (200, 100)


@pytest.mark.parametrize(
    "name", ["doorknob-hd-no-bar.mp4", "chair-orig-22-sd-bar.mp4", "pattern-hd-no-bar.mp4"]
)
def test_a_video_frames_thumbnail_shows_the_frame(name: str) -> None:
    """Scaled in YUV to the JPEG's own YCbCr: the picture the standard's conversion gives (a
    JPEG's loss aside: 1.1-2.7 levels on average, against 1.3-2.9 for swscale's RGB, which
    was 1-1.5 levels too dark)."""
    with av.open(str(video(name))) as c:
        frame = next(f for i, f in enumerate(c.decode(video=0)) if i == 20)
    got = Image.open(io.BytesIO(framedata.frame_thumbnail_jpeg(frame, 384)))
    size = framedata.thumbnail_size(frame.width, frame.height, 384) or (frame.width, frame.height)
    assert got.size == (size[0] & ~1, size[1] & ~1)  # even sides (a JPEG's 4:2:0 blocks)
    diff = np.abs(np.asarray(got, np.int16) - rgb_shrunk(frame, got.size))
    assert diff.mean() < 3 and np.percentile(diff, 99) <= 12, (diff.mean(), diff.max())


def rgb_shrunk(frame: av.VideoFrame, size: tuple[int, int]) -> np.ndarray:
    """What the frame's thumbnail should show: its video-range BT.601 YCbCr (the sample
    videos are untagged) turned into RGB by the standard's own formula, shrunk to `size`."""
    y, cb, cr = (framedata._plane(p).astype(np.float64) for p in frame.planes)
    full = (frame.width, frame.height)
    luma = (y - 16) * 255 / 219
    cb, cr = ((cv2.resize(c, full) - 128) * 255 / 224 for c in (cb, cr))
    rgb = np.dstack([luma + 1.402 * cr, luma - 0.344136 * cb - 0.714136 * cr, luma + 1.772 * cb])
    return cv2.resize(np.clip(rgb, 0, 255), size, interpolation=cv2.INTER_AREA)


def test_a_streams_thumbnailer_keeps_each_frames_picture_across_sizes() -> None:
    """The thumbnailer keeps its scalers from frame to frame; a stream that comes back at
    another size (a reconnect) still gets every frame's own picture, byte for byte."""
    frames = []
    for name in ("doorknob-hd-no-bar.mp4", "chair-orig-22-sd-bar.mp4", "doorknob-hd-no-bar.mp4"):
        with av.open(str(video(name))) as c:
            frames += [f for i, f in enumerate(c.decode(video=0)) if i in (5, 25)]
    thumbs = framedata.Thumbnailer(384, 85)
    sizes = set()
    for frame in frames:
        got = thumbs(frame)
        assert got == framedata.frame_thumbnail_jpeg(frame, 384, 85)
        sizes.add(Image.open(io.BytesIO(got)).size)
    assert len(sizes) == 2


def test_pdq_is_256_bit_hex_and_flat_frames_have_low_quality() -> None:
    rng = np.random.default_rng(0)
    h, q = hash_rgb(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8))
    assert len(h) == 64 and int(h, 16) >= 0 and q > 50
    assert hash_rgb(np.zeros((256, 256, 3), np.uint8))[1] < 50


def test_a_streams_thumbnails_start_no_threads_of_their_own() -> None:
    """One decode thread a stream: its thumbnail scalers run on it (``ingest.decode_threads``)
    instead of starting a thread per core each, woken for every sample; and they stay as
    good as the picture's own RGB copy shrunk."""
    import os

    from framewatch.settings import Settings
    from ingest.engine import SampleEngine, StreamMeta

    engine = SampleEngine(Settings(), StreamMeta("cam", "acct"))
    with av.open(str(video("doorknob-hd-no-bar.mp4"))) as c:
        frames = [f for i, f in enumerate(c.decode(video=0)) if i in (5, 25)]
    before = set(os.listdir("/proc/self/task"))
    got = [engine.thumbnail(f) for f in frames]
    assert set(os.listdir("/proc/self/task")) - before == set()
    for jpeg, frame in zip(got, frames, strict=True):
        img = Image.open(io.BytesIO(jpeg))
        assert np.abs(np.asarray(img, np.int16) - rgb_shrunk(frame, img.size)).mean() < 2.5


# saturated colour bars: white, yellow, cyan, green, magenta, red, blue, near black
BARS = np.array(
    [[255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0], [255, 0, 255], [255, 0, 0],
     [0, 0, 255], [16, 16, 16]], np.uint8,
)  # fmt: skip


@pytest.mark.parametrize(
    ("fmt", "colorspace", "color_range"),
    [
        ("yuv420p", "ITU709", "MPEG"),  # HD video as most encoders tag it
        ("yuv420p", "ITU601", "MPEG"),
        ("yuv420p", "ITU709", "JPEG"),  # full range, tagged as such
        ("yuvj420p", None, None),  # full range by its (old) format
        ("yuv444p", None, None),
        ("yuv420p10le", None, None),
        ("rgb24", None, None),
    ],
)
def test_a_frames_thumbnail_keeps_its_colours_whatever_its_tags(
    fmt: str, colorspace: str | None, color_range: str | None
) -> None:
    """A JPEG holds full-range BT.601 YCbCr: a frame's thumbnail is converted to it from the
    matrix and range the frame is tagged with, so a saturated colour comes out as it went in
    (a BT.709 frame read as BT.601 is off by 22 levels, video range kept as is by 20)."""
    rgb = np.ascontiguousarray(np.repeat(np.repeat(BARS[None], 720, 0), 160, 1))
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    if fmt != "rgb24":
        tags = {"dst_colorspace": colorspace, "dst_color_range": color_range} if colorspace else {}
        frame = frame.reformat(format=fmt, **tags)
    stills = framedata.thumbnail_jpeg(rgb, 384, 95)
    for jpeg in (framedata.frame_thumbnail_jpeg(frame, 384, 95), stills):
        got = np.asarray(Image.open(io.BytesIO(jpeg)), np.float64)
        assert got.shape[0] == 384 and got.shape[1] in (682, 683)  # frames: even sides
        w = got.shape[1] // len(BARS)
        centres = [got[100:300, i * w + 10 : (i + 1) * w - 10].mean((0, 1)) for i in range(8)]
        assert np.abs(np.array(centres) - BARS).max() < 5, np.round(centres)


@pytest.mark.parametrize("name", ["doorknob-hd-no-bar.mp4", "pattern-hd-no-bar.mp4"])
def test_a_frames_thumbnail_is_the_same_bytes_however_it_was_reached(name: str) -> None:
    """A 720p frame's thumbnail is 683 pixels long at 384: it is made 682, so that the JPEG
    reads nothing past the picture. Before, the bytes of the same frame changed with what
    the scaler's buffer held before it (seen as two decodes of one video disagreeing)."""

    def thumbs(every: int) -> dict[int, bytes]:
        out, thumbnailer = {}, framedata.Thumbnailer(384, 85)
        with av.open(str(video(name))) as c:
            for i, frame in enumerate(c.decode(video=0)):
                if i % every == 0 and i <= 30:
                    out[i] = thumbnailer(frame)
        return out

    every_frame, every_tenth = thumbs(1), thumbs(10)
    assert set(every_tenth) == {0, 10, 20, 30}
    for i, jpeg in every_tenth.items():
        assert jpeg == every_frame[i], f"frame {i}"
    sizes = {Image.open(io.BytesIO(j)).size for j in every_tenth.values()}
    assert all(w % 2 == 0 and h % 2 == 0 and 384 in (w, h) for w, h in sizes), sizes
