"""Unit tests of pushed-image checks and per-frame work (no network)."""

from __future__ import annotations

import io

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
    """Scaled in YUV, then converted: the same picture as shrinking the frame's RGB copy."""
    import av

    with av.open(str(video(name))) as c:
        frame = next(f for i, f in enumerate(c.decode(video=0)) if i == 20)
    got = Image.open(io.BytesIO(framedata.frame_thumbnail_jpeg(frame, 384)))
    want = Image.open(io.BytesIO(framedata.thumbnail_jpeg(frame.to_ndarray(format="rgb24"), 384)))
    assert got.size == want.size and min(got.size) == min(384, frame.height)
    diff = np.abs(np.asarray(got, np.int16) - np.asarray(want, np.int16))
    assert diff.mean() < 2.5 and np.percentile(diff, 99) <= 12, (diff.mean(), diff.max())


def test_a_streams_thumbnailer_keeps_each_frames_picture_across_sizes() -> None:
    """The thumbnailer keeps its scalers from frame to frame; a stream that comes back at
    another size (a reconnect) still gets every frame's own picture, byte for byte."""
    import av

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

    import av

    from framewatch.settings import Settings
    from ingest.engine import SampleEngine, StreamMeta

    engine = SampleEngine(Settings(), StreamMeta("cam", "acct"))
    with av.open(str(video("doorknob-hd-no-bar.mp4"))) as c:
        frames = [f for i, f in enumerate(c.decode(video=0)) if i in (5, 25)]
    wants = [framedata.thumbnail_jpeg(f.to_ndarray(format="rgb24"), 384) for f in frames]
    before = set(os.listdir("/proc/self/task"))
    got = [engine.thumbnail(f) for f in frames]
    assert set(os.listdir("/proc/self/task")) - before == set()
    for jpeg, want in zip(got, wants, strict=True):
        diff = np.asarray(Image.open(io.BytesIO(jpeg)), np.int16) - np.asarray(
            Image.open(io.BytesIO(want)), np.int16
        )
        assert np.abs(diff).mean() < 2.5
