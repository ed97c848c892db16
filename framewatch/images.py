"""The one decoder of untrusted image bytes: pushed stills (ingest), frames and the check API
(scoring).

Nothing from the sender is trusted: the type comes from the bytes, the pixel count from the
image header before any pixel is decoded (decompression bombs refused), and EXIF is dropped
(rotation applied first) because only the decoded pixels travel on.
"""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps

from framewatch.errors import FramewatchError

JPEG, PNG, WEBP, GIF = "image/jpeg", "image/png", "image/webp", "image/gif"
STILLS = frozenset({JPEG, PNG, WEBP})  # what the push API takes (an animated GIF is a video)
ANY = STILLS | {GIF}  # what the scorer and the check API take (a GIF's first frame)
_NAMES = {JPEG: "JPEG", PNG: "PNG", WEBP: "WebP", GIF: "GIF"}


class ImageRejected(FramewatchError):
    """Bytes that are not an acceptable image; ``status``/``code`` are what an API answers."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def sniff(data: bytes) -> str | None:
    """MIME type from magic bytes: image/jpeg, png, webp, gif, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return JPEG
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    return None


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB, with 16/32-bit integer images scaled (PIL's own convert clips them to white)."""
    if img.mode.startswith("I"):
        wide = np.asarray(img).astype(np.uint32)
        return Image.fromarray((wide // 257).clip(0, 255).astype(np.uint8)).convert("RGB")
    return img.convert("RGB")


def decode(
    data: bytes,
    *,
    max_pixels: int,
    max_bytes: int | None = None,
    formats: frozenset[str] = STILLS,
    bgr: bool = False,
) -> tuple[np.ndarray, str]:
    """HxWx3 uint8 pixels (RGB, or BGR for OpenCV code; EXIF rotation applied) and the sniffed
    MIME type, or ImageRejected saying why."""
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageRejected(
            413, "too_large", f"image is {len(data)} bytes; the limit is {max_bytes}"
        )
    mime = sniff(data)
    if mime not in formats:
        kinds = " or ".join(n for m, n in _NAMES.items() if m in formats)
        raise ImageRejected(
            415, "unsupported_media_type",
            f"cannot decode {len(data)} bytes: not a {kinds} image (sniffed bytes)",
        )  # fmt: skip
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > max_pixels:
                raise ImageRejected(
                    413, "too_many_pixels",
                    f"image is {w}x{h} = {w * h} pixels, over the limit of {max_pixels}; "
                    "send a smaller image",
                )  # fmt: skip
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # no copy: big images stay 2 copies
            pixels = np.asarray(img if img.mode == "RGB" else _to_rgb(img))
            del img
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(
            413, "too_many_pixels",
            f"image refused: a decompression bomb, over the limit of {max_pixels} pixels ({exc})",
        ) from None  # fmt: skip
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageRejected(
            422, "bad_image", f"cannot decode the {mime} image: truncated or corrupt ({exc})"
        ) from None
    if bgr:  # OpenCV's swap: 0.08 against numpy's reversed-view copy 0.51 ms at 480x270
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    return pixels, mime
