"""Hostile media made at test time (PyAV, pillow, numpy): nothing downloaded, nothing committed.

Each case is bytes plus what must happen to it. Videos go through `framewatch ingest FILE`;
images through the push API and `framewatch check`. ``expect`` names the outcome a user
should see: ``frame`` (a correct frame), or an error code.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import av
import numpy as np
from PIL import Image

RED = (220, 30, 30)


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "video" or "image"
    suffix: str
    make: Callable[[], bytes]
    what: str  # one line: what the input is


def _video(fmt: str, codec: str = "libx264", frames: int = 48, size: tuple[int, int] = (320, 240),
           audio: bool = False, video: bool = True) -> bytes:  # fmt: skip
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        vs = out.add_stream(codec, rate=24) if video else None
        if vs is not None:
            vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        aus = out.add_stream("aac", rate=16000) if audio else None
        for i in range(frames):
            if vs is not None:
                img = np.full((size[1], size[0], 3), (i * 5) % 255, np.uint8)
                img[:, : (i * 7) % size[0]] = 255
                for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(p)
            if aus is not None:
                samples = (np.sin(np.arange(667) / 5) * 0.3).astype(np.float32)[None, :]
                af = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                af.sample_rate = 16000
                for p in aus.encode(af):
                    out.mux(p)
        for s in (vs, aus):
            if s is not None:
                for p in s.encode():
                    out.mux(p)
    return buf.getvalue()


def _corrupt_middle(data: bytes) -> bytes:
    """Overwrite a third of the file, from its middle, with noise (headers stay intact)."""
    rng = np.random.default_rng(7)
    a, n = len(data) // 2, len(data) // 3
    return data[:a] + rng.integers(0, 256, n, dtype=np.uint8).tobytes() + data[a + n :]


def _unknown_codec() -> bytes:
    """An MP4 whose video sample entry says 'zzzz': a codec no FFmpeg decodes."""
    return _video("mp4").replace(b"avc1", b"zzzz")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h 8-bit gray pixels with a tiny compressed body."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    idat = zlib.compress((b"\0" * (w + 1)) * min(h, 256), 9)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))  # fmt: skip


def _png_zero_size() -> bytes:
    return png_bomb(0, 0)


def _png_real_bomb() -> bytes:
    """A real, fully valid 12000 x 12000 gray PNG (144 Mpx) that compresses to ~150 KB."""
    w = h = 12000
    raw = zlib.compressobj(9)
    body = b"".join(raw.compress(b"\0" * (w + 1)) for _ in range(h)) + raw.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body)
            + _png_chunk(b"IEND", b""))  # fmt: skip


def _save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def jpeg_bomb(w: int = 20000, h: int = 20000) -> bytes:
    """A small valid JPEG whose SOF header is patched to claim w x h pixels."""
    data = bytearray(_save(Image.new("RGB", (16, 16), RED), "JPEG"))
    i = data.index(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def _big_allowed() -> bytes:
    """6000 x 6000 (36 Mpx): under the default 40 Mpx limit, so it must decode, once."""
    return _save(Image.new("RGB", (6000, 6000), RED), "JPEG", quality=50)


def _gif_animated() -> bytes:
    frames = [Image.new("P", (64, 48), c) for c in (0, 1, 2)]
    for f in frames:
        f.putpalette([*RED, 0, 200, 0, 0, 0, 200] + [0] * 759)
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _webp_animated() -> bytes:
    frames = [Image.new("RGB", (64, 48), c) for c in (RED, (0, 200, 0), (0, 0, 200))]
    return _save(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)


def _cmyk_jpeg() -> bytes:
    return _save(Image.new("RGB", (64, 48), RED).convert("CMYK"), "JPEG", quality=95)


def _png16() -> bytes:
    """16-bit gray: the left half at 1/4 of full scale, the right half at 3/4."""
    a = np.zeros((48, 64), np.uint16)
    a[:, :32], a[:, 32:] = 16384, 49152
    return _save(Image.fromarray(a), "PNG")


def _exif_rotated() -> bytes:
    """Landscape 128 x 96 stored (textured, so PDQ is stable), EXIF orientation 6: shown as
    portrait 96 x 128, with the red strip of its left side on top."""
    blocks = np.random.default_rng(5).integers(0, 255, (12, 16, 3), dtype=np.uint8)
    img = Image.fromarray(blocks.repeat(8, 0).repeat(8, 1))
    img.paste(Image.new("RGB", (16, 96), RED), (0, 0))  # left strip -> top after rotation
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(img, "JPEG", exif=exif, quality=95)


def _jpeg_truncated() -> bytes:
    rng = np.random.default_rng(3)
    data = _save(Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)), "JPEG")
    return data[: len(data) // 3]


VIDEOS = [
    Case("mp4_truncated", "video", ".mp4", lambda: (d := _video("mp4"))[: len(d) // 2],
         "H.264 MP4 cut in half (index promises more than the file holds)"),
    Case("mp4_corrupt", "video", ".mp4", lambda: _corrupt_middle(_video("mp4")),
         "H.264 MP4 with a third of its media data overwritten by noise"),
    Case("flv_truncated", "video", ".flv", lambda: (d := _video("flv"))[: len(d) // 2],
         "H.264 FLV cut in half"),
    Case("flv_corrupt", "video", ".flv", lambda: _corrupt_middle(_video("flv")),
         "H.264 FLV with a third of it overwritten by noise"),
    Case("audio_only", "video", ".m4a", lambda: _video("mp4", audio=True, video=False),
         "AAC audio, no video stream"),
    Case("unknown_codec", "video", ".mp4", _unknown_codec,
         "MP4 whose video codec tag no decoder knows"),
    Case("video_zero_bytes", "video", ".mp4", lambda: b"", "an empty file"),
    Case("video_garbage", "video", ".mp4", lambda: np.random.default_rng(1).integers(
        0, 256, 50_000, dtype=np.uint8).tobytes(), "50 kB of noise named .mp4"),
]  # fmt: skip

IMAGES = [
    Case("image_zero_bytes", "image", ".jpg", lambda: b"", "an empty file"),
    Case("png_zero_size", "image", ".png", _png_zero_size, "PNG header claiming 0 x 0 pixels"),
    Case("png_bomb_20000", "image", ".png", lambda: png_bomb(20000, 20000),
         "PNG header claiming 20000 x 20000 (400 Mpx), tiny body"),
    Case("png_real_bomb", "image", ".png", _png_real_bomb,
         "a fully valid 12000 x 12000 PNG (144 Mpx) compressed to ~150 kB"),
    Case("jpeg_bomb_20000", "image", ".jpg", jpeg_bomb,
         "JPEG whose SOF claims 20000 x 20000 pixels"),
    Case("jpeg_truncated", "image", ".jpg", _jpeg_truncated, "a JPEG cut to a third"),
    Case("jpeg_6000", "image", ".jpg", _big_allowed, "6000 x 6000 JPEG (36 Mpx, under the limit)"),
    Case("gif_animated", "image", ".gif", _gif_animated, "3-frame animated GIF"),
    Case("webp_animated", "image", ".webp", _webp_animated, "3-frame animated WebP, red first"),
    Case("jpeg_cmyk", "image", ".jpg", _cmyk_jpeg, "CMYK JPEG, red"),
    Case("png_16bit", "image", ".png", _png16, "16-bit gray PNG, 25% | 75% of full scale"),
    Case("jpeg_exif_rotated", "image", ".jpg", _exif_rotated,
         "128x96 JPEG, EXIF orientation 6 (red strip on the left -> top)"),
]  # fmt: skip

ALL = {c.name: c for c in VIDEOS + IMAGES}
