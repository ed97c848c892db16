"""Checking and decoding pushed images: sniffed type, size and pixel limits, EXIF rotation.

Nothing from the request headers is trusted: the type comes from the bytes, the pixel count from
the image header before any pixel is decoded (decompression bombs refused), and EXIF is dropped
(rotation applied first) because only the decoded pixels travel on.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps

from ingest.errors import IngestError


class ImageRejected(IngestError):
    """A pushed body is not an acceptable image; `status` is the HTTP status to answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def sniff(data: bytes) -> str | None:
    """MIME type from magic bytes: image/jpeg, image/png, image/webp, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB, with 16/32-bit integer images scaled (PIL's own convert clips them to white)."""
    if img.mode.startswith("I"):
        wide = np.asarray(img).astype(np.uint32)
        return Image.fromarray((wide // 257).clip(0, 255).astype(np.uint8)).convert("RGB")
    return img.convert("RGB")


def decode(data: bytes, *, max_bytes: int, max_pixels: int) -> tuple[np.ndarray, str]:
    """RGB pixels (EXIF rotation applied) and the sniffed MIME type, or ImageRejected."""
    if len(data) > max_bytes:
        raise ImageRejected(
            413, "too_large", f"image is {len(data)} bytes; the limit is {max_bytes}"
        )
    mime = sniff(data)
    if mime is None:
        raise ImageRejected(
            415, "unsupported_media_type", "body is not a JPEG, PNG or WebP image (sniffed bytes)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > max_pixels:
                raise ImageRejected(
                    413, "too_many_pixels",
                    f"image is {w}x{h} = {w * h} pixels; the limit is {max_pixels}",
                )  # fmt: skip
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # no copy: big images stay 2 copies
            rgb = np.asarray(img if img.mode == "RGB" else _to_rgb(img))
            del img
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(
            413, "too_many_pixels", f"image refused, the limit is {max_pixels} pixels: {exc}"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageRejected(422, "bad_image", f"{mime} image could not be decoded: {exc}") from None
    return rgb, mime
