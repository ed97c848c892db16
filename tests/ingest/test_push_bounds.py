"""Push API edges: big raw bodies arrive whole, impossible capture times are refused.

Regressions for issue 14.5 (a raw body over about 600 KB was cut to what the socket had
buffered: a 2.6 MB JPEG and a 3 MB PNG got 422 "image file is truncated") and 14.2
(captured_at -1e18 or 1e13 was accepted and later crashed the streams worker).
"""

from __future__ import annotations

import asyncio
import io
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator

import numpy as np
import pytest
from PIL import Image

from framewatch import apikeys, records, redisio
from framewatch.settings import Settings
from tests.ingest.helpers import consume, push_server
from tests.ingest.test_push_api import Api, post

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def api(settings: Settings, kafka_topics: object) -> AsyncIterator[Api]:
    key = apikeys.create(settings, redisio.sync_client(settings), "tenant-a")
    async with push_server(settings) as url:
        yield Api(url, key, settings)


def noise(w: int, h: int, fmt: str, **kw: object) -> bytes:
    """Random pixels: incompressible, so the file is as big as its dimensions say."""
    rng = np.random.default_rng(7)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, fmt, **kw)
    return buf.getvalue()


def raw_push(api: Api, body: bytes, mime: str) -> tuple[int, dict]:
    """POST the bytes as the raw body with urllib (a plain HTTP/1.1 client, as a platform's)."""
    req = urllib.request.Request(
        f"{api.url}/v1/streams/cam-big/frames?account_id=acct-9",
        data=body,
        headers={"Authorization": f"Bearer {api.key}", "Content-Type": mime},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


async def test_big_raw_jpeg_and_png_arrive_whole(api: Api) -> None:
    big_jpeg = noise(1700, 1300, "JPEG", quality=95)
    big_png = noise(1000, 1000, "PNG")
    assert len(big_jpeg) > 2_400_000 and len(big_png) > 2_900_000
    for body, mime in ((big_jpeg, "image/jpeg"), (big_png, "image/png")):
        status, answer = await asyncio.to_thread(raw_push, api, body, mime)
        assert status == 202, answer
    frames = await consume(api.settings, "frames", 2)
    assert [(f.width, f.height) for f in frames] == [(1700, 1300), (1000, 1000)]  # type: ignore[attr-defined]


@pytest.mark.parametrize("captured_at", ["-1e18", "1e13", "nan", "inf", "1e300"])
async def test_impossible_capture_time_is_refused(api: Api, captured_at: str) -> None:
    status, body = await post(api, noise(64, 64, "JPEG"), captured_at=captured_at)
    assert status == 400 and body["error"] == "bad_captured_at", body
    assert "1970 and 2100" in body["message"]
    assert await consume(api.settings, "frames", 1, timeout=2) == []


async def test_capture_time_inside_the_window_is_kept(api: Api) -> None:
    status, body = await post(api, noise(64, 64, "JPEG"), captured_at="1700000000.5")
    assert status == 202, body
    (frame,) = await consume(api.settings, "frames", 1)
    assert isinstance(frame, records.Frame) and frame.captured_at == 1700000000.5
