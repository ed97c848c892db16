"""The 5xx answers the fuzzing found, each pinned as a 4xx with a message that says what to do."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from framewatch import apikeys, redisio
from framewatch.settings import Settings
from scoring.api import app as check_app
from scoring.scorer import Scorer
from tests.ingest.helpers import push_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_check_api_bad_requests_are_400_not_500(settings: Settings) -> None:
    srv = TestServer(check_app(settings, Scorer([])))  # none of these reaches a model
    await srv.start_server()
    auth = {
        "Authorization": f"Bearer {apikeys.create(settings, redisio.sync_client(settings), 't')}"
    }
    cases = [
        {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
        {"json": {"image_url": 5}},
        {"json": {"image_url": "http://no-such-host.invalid/a.jpg"}},
        {"json": {"image_url": "http://[::1/a.jpg"}},
    ]
    try:
        async with aiohttp.ClientSession() as s:
            for kw in cases:
                kw["headers"] = {**kw.get("headers", {}), **auth}
                async with s.post(srv.make_url("/v1/check"), **kw) as r:
                    body = await r.json()
                    assert r.status == 400 and body["error"]["message"], (kw, body)
            part = {"type": "image_url", "image_url": "http://no-such-host.invalid/a"}
            url = srv.make_url("/v1/moderations")
            async with s.post(url, json={"input": [part]}, headers=auth) as r:
                assert r.status == 400 and "not allowed" in (await r.json())["error"]["message"]
            async with s.get(srv.make_url("/openapi.json")) as r:
                assert set((await r.json())["paths"]) == {"/v1/check", "/v1/moderations"}
    finally:
        await srv.close()


async def test_push_api_malformed_multipart_and_nan_time_are_400(
    settings: Settings, kafka_topics: object
) -> None:
    key = apikeys.create(settings, redisio.sync_client(settings), "t")
    auth = {"Authorization": f"Bearer {key}"}
    body = (b'--b\r\nContent-Disposition: form-data; name="\x0b\xf3\x8f"\r\n\r\nx\r\n'
            b'--b\r\nContent-Disposition: form-data; name="frame"\r\n\r\n)\r\n--b--\r\n')  # fmt: skip
    async with push_server(settings) as base, aiohttp.ClientSession() as s:
        url = f"{base}/v1/streams/s/frames?account_id=a"
        headers = {**auth, "Content-Type": "multipart/form-data; boundary=b"}
        async with s.post(url, data=body, headers=headers) as r:
            assert r.status == 400 and (await r.json())["error"] == "bad_multipart"
        for bad in ("nan", "inf"):
            async with s.post(f"{url}&captured_at={bad}", data=b"x", headers=auth) as r:
                assert r.status == 400 and (await r.json())["error"] == "bad_captured_at"
