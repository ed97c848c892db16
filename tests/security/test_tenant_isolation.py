"""Tenant isolation over real HTTP with real Redis and Kafka: a key of tenant A reaches nothing
of tenant B (push, sources, acks); keys are stored hashed, compared in constant time, and rotate
without downtime."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np
import pytest
from PIL import Image
from pydantic import SecretStr

from alerts.router import Router
from alerts.routing import Routing
from framewatch import apikeys, records, redisio
from framewatch.settings import Settings, to_env
from tests.ingest.helpers import consume, push_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

PUBLIC_URL = "rtmp://93.184.216.34/live/x"  # a public address literal: no DNS needed


def jpeg(seed: int) -> bytes:
    img = np.random.default_rng(seed).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG")
    return buf.getvalue()


@dataclass
class Ingest:
    url: str
    a: str  # API key of tenant-a
    b: str  # API key of tenant-b
    settings: Settings

    async def call(self, method: str, path: str, key: str, **kw: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {key}", **kw.pop("headers", {})}
        async with (
            aiohttp.ClientSession() as s,
            s.request(method, self.url + path, headers=headers, **kw) as r,
        ):
            return r.status, await r.json()

    async def push(self, key: str, stream: str, seed: int) -> tuple[int, Any]:
        return await self.call(
            "POST", f"/v1/streams/{stream}/frames", key, data=jpeg(seed),
            params={"account_id": "acct"}, headers={"Content-Type": "image/jpeg"},
        )  # fmt: skip


@pytest.fixture
async def ingest(settings: Settings, kafka_topics: object) -> AsyncIterator[Ingest]:
    r = redisio.sync_client(settings)
    a, b = apikeys.create(settings, r, "tenant-a"), apikeys.create(settings, r, "tenant-b")
    async with push_server(settings) as url:
        yield Ingest(url, a, b, settings)


async def test_a_cannot_push_into_bs_stream(ingest: Ingest) -> None:
    assert (await ingest.push(ingest.b, "cam-b", 1))[0] == 202
    status, body = await ingest.push(ingest.a, "cam-b", 2)
    assert status == 403 and body["error"] == "stream_forbidden"
    assert "another tenant" in body["message"]
    assert (await ingest.push(ingest.a, "cam-a", 3))[0] == 202
    frames = await consume(ingest.settings, "frames", 3, timeout=5)
    assert sorted((f.tenant, f.stream_id) for f in frames) == [
        ("tenant-a", "cam-a"),
        ("tenant-b", "cam-b"),
    ]


async def test_a_cannot_register_read_or_remove_bs_sources(ingest: Ingest) -> None:
    body = {"source": PUBLIC_URL, "account_id": "acct-b"}
    assert (await ingest.call("PUT", "/v1/sources/pull-b", ingest.b, json=body))[0] == 200
    # A can neither replace B's pull nor take B's pushed stream id
    status, err = await ingest.call("PUT", "/v1/sources/pull-b", ingest.a, json=body)
    assert status == 403 and err["error"] == "stream_forbidden"
    assert (await ingest.push(ingest.b, "cam-b", 1))[0] == 202
    status, _ = await ingest.call("PUT", "/v1/sources/cam-b", ingest.a, json=body)
    assert status == 403
    # A lists only its own pulls, and removing B's reads as absent
    assert (await ingest.call("PUT", "/v1/sources/pull-a", ingest.a, json=body))[0] == 200
    _, listed = await ingest.call("GET", "/v1/sources", ingest.a)
    assert [e["stream_id"] for e in listed["sources"]] == ["pull-a"]
    assert listed["sources"][0]["tenant"] == "tenant-a"
    status, err = await ingest.call("DELETE", "/v1/sources/pull-b", ingest.a)
    assert status == 404 and err["error"] == "not_found"
    _, listed_b = await ingest.call("GET", "/v1/sources", ingest.b)
    assert [e["stream_id"] for e in listed_b["sources"]] == ["pull-b"]
    assert (await ingest.call("DELETE", "/v1/sources/pull-b", ingest.b))[0] == 200


async def test_tenants_cannot_register_files_or_internal_urls(ingest: Ingest) -> None:
    for source in ("/etc/passwd", "file:///etc/passwd", "rtsp://169.254.169.254/x"):
        body = {"source": source, "account_id": "acct"}
        status, err = await ingest.call("PUT", "/v1/sources/s", ingest.a, json=body)
        assert status == 400 and err["error"] == "url_refused", (source, err)


def test_operator_cli_cannot_hand_bs_stream_to_a(settings: Settings) -> None:
    from ingest import tenancy

    tenancy.claim_sync(settings, redisio.sync_client(settings), "tenant-b", "cam-b")
    env = {**to_env(settings), "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "framewatch.cli", "sources", "add", PUBLIC_URL,
           "--stream-id", "cam-b", "--account-id", "x", "--tenant", "tenant-a"]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "belongs to another tenant" in out.stderr


async def test_a_cannot_acknowledge_bs_incident(settings: Settings) -> None:
    r = redisio.sync_client(settings)
    a, b = apikeys.create(settings, r, "tenant-a"), apikeys.create(settings, r, "tenant-b")
    s = settings.model_copy(
        update={"alerts": settings.alerts.model_copy(
            update={"http_port": 0, "ack_token": SecretStr("on-call-token")})}
    )  # fmt: skip
    routing = Routing.model_validate({
        "sinks": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/x", "secret": "s"}},
        "routes": [{"name": "all", "sinks": ["hook"]}],
    })  # fmt: skip
    router = Router(s, routing)
    now = records.now()
    inc = records.Alert(
        incident_id="inc-b", severity="critical", category="csam.match", red_line=True,
        stream_id="cam-b", account_id="acct-b", tenant="tenant-b", summary="x",
        captured_at=now, raised_at=now,
    )  # fmt: skip
    await router._track(inc, [])  # what the router records when it pages
    await router._track(inc.model_copy(update={"incident_id": "inc-b2"}), [])
    await router.start_http()
    url = f"http://127.0.0.1:{router.http_port}/v1/alerts/inc-b/ack"
    try:
        async with aiohttp.ClientSession() as http:

            async def ack(key: str | None) -> int:
                h = {"Authorization": f"Bearer {key}"} if key else {}
                async with http.post(url, headers=h) as resp:
                    return resp.status

            assert await ack(None) == 401  # anonymous acks are refused
            assert await ack("fwk_unknown") == 401
            assert await ack(a) == 404  # another tenant's incident reads as absent
            assert not r.exists(redisio.key(s, "alerts", "ack", "inc-b"))
            assert await ack(b) == 200
            assert r.exists(redisio.key(s, "alerts", "ack", "inc-b"))
            url = url.replace("inc-b", "inc-b2")
            assert await ack("on-call-token") == 200  # the on-call token acks any tenant's
    finally:
        assert router._runner is not None
        await router._runner.cleanup()
        await router.redis.aclose()
        await router.producer.stop()  # never started; closes its client


async def test_keys_are_stored_hashed_and_compared_in_constant_time(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = redisio.sync_client(settings)
    key = apikeys.create(settings, r, "tenant-a")
    stored = {k: r.get(k) for k in r.scan_iter(match=redisio.key(settings, "*"))}
    assert stored and not any(key.encode() in k or key.encode() in (v or b"")
                              for k, v in stored.items())  # fmt: skip
    assert any(hashlib.sha256(key.encode()).hexdigest().encode() in k for k in stored)
    calls: list[tuple[str, str]] = []
    real = apikeys.hmac.compare_digest

    def spy(x: Any, y: Any) -> bool:
        calls.append((x, y))
        return real(x, y)

    monkeypatch.setattr(apikeys.hmac, "compare_digest", spy)
    client = redisio.async_client(settings)
    try:
        assert await apikeys.tenant_of(settings, client, key) == "tenant-a"
        assert await apikeys.tenant_of(settings, client, key + "x") is None
    finally:
        await client.aclose()
    # both the hit and the miss went through compare_digest on the full digest
    assert len(calls) == 2 and all(len(x) == 64 for x, _ in calls)


async def test_key_rotation_without_downtime(ingest: Ingest) -> None:
    r = redisio.sync_client(ingest.settings)
    old = ingest.a
    new = apikeys.create(ingest.settings, r, "tenant-a")  # step 1: add the new key
    assert [e["tenant"] for e in apikeys.list_keys(ingest.settings, r, "tenant-a")] == [
        "tenant-a",
        "tenant-a",
    ]
    # step 2: clients move over; meanwhile both keys work against the running server
    assert (await ingest.push(old, "cam-a", 1))[0] == 202
    assert (await ingest.push(new, "cam-a", 2))[0] == 202
    # step 3: the operator finds the old key's digest and revokes it (the real command)
    env = {**to_env(ingest.settings), "PATH": "/usr/bin:/bin"}
    listed = subprocess.run([sys.executable, "-m", "framewatch.cli", "apikeys", "list",
                             "--tenant", "tenant-a", "--json"], env=env, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    digests = [e["sha256"] for e in json.loads(listed.stdout)]
    assert apikeys.digest(old) in digests and old not in listed.stdout
    revoked = subprocess.run([sys.executable, "-m", "framewatch.cli", "apikeys", "revoke",
                              apikeys.digest(old)], env=env, capture_output=True, timeout=60)  # fmt: skip
    assert revoked.returncode == 0
    assert (await ingest.push(old, "cam-a", 3))[0] == 401
    assert (await ingest.push(new, "cam-a", 4))[0] == 202
