"""What a client with a valid key can still try on the push API: trickle its upload for ever,
and name streams with 7 KB ids carrying newlines that end up as Prometheus labels.

Regressions for issue 13.7: an authenticated slow upload was never timed out, and stream ids
became metric labels with no bound.
"""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import aiohttp
import numpy as np
import pytest
from PIL import Image

from framewatch import apikeys, fields, redisio
from framewatch.local import free_port
from framewatch.settings import Settings
from tests.ingest.helpers import push_server
from tests.ingest.test_serve_cli import env_of
from tests.security.slow import trickle

pytestmark = pytest.mark.timeout(120)
HUGE_ID = "x" * 7000 + "\nframewatch_up 1"  # a label value that would forge a metric line


def png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("route", ["push", "sources"])
async def test_a_trickled_body_gets_408_and_the_connection_closes(
    make_settings: object, route: str
) -> None:
    settings: Settings = make_settings(ingest={"body_timeout_s": 1.0})  # type: ignore[operator]
    from framewatch.kafkaio import create_topics

    await create_topics(settings)
    r = redisio.sync_client(settings)
    key = apikeys.create(settings, r, "tenant-a")
    async with push_server(settings) as url:
        port = int(url.rsplit(":", 1)[1])
        path = (
            "POST /v1/streams/slow-cam/frames?account_id=acct-1"
            if route == "push"
            else "PUT /v1/sources/slow-cam"
        )
        head = (
            f"{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: {'image/png' if route == 'push' else 'application/json'}\r\n"
        )
        answer = await trickle(port, head, 100_000)  # returns once the server hung up
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line.startswith(b"HTTP/1.1 408"), answer[:200]
        body = json.loads(rest.partition(b"\r\n\r\n")[2])
        assert body["error"] == "body_timeout" and "1 s" in body["message"]
        # nothing of the stream was claimed or counted by the aborted upload
        assert [k for k in r.scan_iter(match=redisio.key(settings, "*")) if b"slow-cam" in k] == []
        async with aiohttp.ClientSession() as s:
            auth = {"Authorization": f"Bearer {key}"}
            if route == "push":
                async with s.post(
                    f"{url}/v1/streams/slow-cam/frames?account_id=acct-1", data=png(), headers=auth
                ) as resp:
                    assert resp.status == 202 and (await resp.json())["seq"] == 0
            else:
                async with s.get(f"{url}/v1/sources", headers=auth) as resp:
                    assert (await resp.json())["sources"] == []


async def _scrape(port_dir: Path) -> str:
    deadline = time.monotonic() + 30
    while (p := port_dir / "ingest.port").exists() is False:
        assert time.monotonic() < deadline, "ingest serve bound no /metrics"
        await asyncio.sleep(0.2)
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"http://127.0.0.1:{p.read_text()}/metrics") as r,
    ):
        return await r.text()


async def test_bad_ids_are_refused_and_metrics_stay_bounded(
    settings: Settings, kafka_topics: object, tmp_path: Path
) -> None:
    key = apikeys.create(settings, redisio.sync_client(settings), "tenant-a")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "framewatch.cli", "ingest", "serve"],
        env=env_of(
            settings,
            FRAMEWATCH_INGEST__HTTP_PORT=str(port),
            FRAMEWATCH_METRICS__ENABLED="true",
            FRAMEWATCH_METRICS__PORT_DIR=str(tmp_path / "ports"),
            FRAMEWATCH_METRICS__MAX_STREAM_SERIES="2",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
    try:
        async with aiohttp.ClientSession() as s:
            deadline = time.monotonic() + 40
            while True:
                try:
                    async with s.get(f"{base}/healthz") as r:
                        break
                except aiohttp.ClientConnectionError:
                    assert time.monotonic() < deadline, "serve did not come up"
                    await asyncio.sleep(0.2)

            async def push(stream: str, account: str = "acct-1") -> tuple[int, dict]:
                url = f"{base}/v1/streams/{quote(stream, safe='')}/frames"
                async with s.post(
                    url, params={"account_id": account}, data=png(), headers=auth
                ) as r:
                    return r.status, await r.json()

            for bad in (HUGE_ID, "cam 1", "-cam", "x" * 129):
                status, body = await push(bad)
                assert status == 422 and body["error"] == "bad_stream_id", (bad[:20], body)
                assert fields.ID_PATTERN in body["message"] and "128" in body["message"]
                assert bad not in body["message"]
            status, body = await push("cam-1", account="acct\n1")
            assert status == 422 and body["error"] == "bad_account_id"
            put = f"{base}/v1/sources/{quote(HUGE_ID, safe='')}"
            src = {"source": "rtmp://93.184.215.14/live/k", "account_id": "acct-1"}
            async with s.put(put, json=src, headers=auth) as r:
                assert r.status == 422 and (await r.json())["error"] == "bad_stream_id"
            async with s.put(f"{base}/v1/sources/cam-9", json={**src, "account_id": "a\nb"},
                             headers=auth) as r:  # fmt: skip
                assert r.status == 422 and (await r.json())["error"] == "bad_account_id"
            for ok in ("cam-1", "cam-2", "cam-3"):
                assert (await push(ok))[0] == 202
        text = await _scrape(tmp_path / "ports")
    finally:
        proc.terminate()
        proc.wait(20)
    assert "xxxxxxxxxx" not in text and "acct\n" not in text
    last = [ln for ln in text.splitlines()
            if ln.startswith("framewatch_stream_last_frame_timestamp_seconds{")]  # fmt: skip
    # at most max_stream_series streams: the least recently used (cam-1) made way for cam-3
    assert len(last) == 2 and 'stream_id="cam-1"' not in text
    assert all('tenant="tenant-a"' in ln for ln in last)
    assert any('stream_id="cam-3"' in ln for ln in last)


def test_rtmp_stream_keys_and_the_cli_refuse_bad_ids(settings: Settings) -> None:
    from ingest import streamkeys

    r = redisio.sync_client(settings)
    with pytest.raises(fields.BadIdError, match="stream id must be 1 to 128"):
        streamkeys.create_key(settings, r, "tenant-a", "acct-1", HUGE_ID)
    assert list(r.scan_iter(match=redisio.key(settings, "streamkey", "*"))) == []
    cli = subprocess.run(
        [sys.executable, "-m", "framewatch.cli", "sources", "key", "--stream-id", "a b",
         "--account-id", "acct-1"],
        env=env_of(settings), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cli.returncode == 2 and "stream id must be 1 to 128 characters" in cli.stderr
