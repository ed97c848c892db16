"""Tenant isolation over real HTTP with real Redis and Kafka: a key of tenant A reaches nothing
of tenant B (push, sources, acks); keys are stored hashed, compared in constant time, and rotate
without downtime."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from PIL import Image

from alerts.router import Router
from alerts.routing import Routing
from framewatch import apikeys, kafkaio, records, redisio, scope
from framewatch.records import Alert, Decision, Enforcement
from framewatch.settings import Settings, to_env
from scoring.cache import ScoreCache
from scoring.scorer import Scored
from streams.inspect import table_snapshot
from tests.ingest.helpers import push_server
from tests.streams.helpers import scores
from tests.streams.worker import Worker, collect, env_for, produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

PUBLIC_URL = "rtmp://93.184.216.34/live/x"  # a public address literal: no DNS needed


async def consume_raw(settings: Settings, topic: str, want: int) -> list[tuple[Any, Any]]:
    """(message, record) pairs of a topic from its start, until ``want`` came or 20 s."""
    cons = kafkaio.consumer(settings, settings.topics.name(topic), group_id=None)
    await cons.start()
    out: list[tuple[Any, Any]] = []
    try:
        deadline = time.monotonic() + 20
        while len(out) < want and time.monotonic() < deadline:
            for msgs in (await cons.getmany(timeout_ms=300)).values():
                out.extend((m, records.decode(m.value)) for m in msgs)
    finally:
        await cons.stop()
    return out


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


async def test_same_stream_id_pushed_by_two_tenants_stays_two_streams(ingest: Ingest) -> None:
    """Each tenant names its own streams: B's cam-1 and A's cam-1 are two streams, with their
    own Kafka key, seq counter and tenant (on main, A got 403 or took B's stream id)."""
    assert (await ingest.push(ingest.b, "cam-1", 1))[0] == 202
    status, body = await ingest.push(ingest.a, "cam-1", 2)
    assert status == 202 and body["seq"] == 0  # A's own counter, not B's
    assert (await ingest.push(ingest.b, "cam-1", 3))[1]["seq"] == 1
    frames = await consume_raw(ingest.settings, "frames", 3)
    got = sorted((m.key.decode(), f.tenant, f.stream_id, f.seq) for m, f in frames)
    assert got == [
        ("tenant-a/cam-1", "tenant-a", "cam-1", 0),
        ("tenant-b/cam-1", "tenant-b", "cam-1", 0),
        ("tenant-b/cam-1", "tenant-b", "cam-1", 1),
    ]


async def test_a_cannot_read_or_remove_bs_sources(ingest: Ingest) -> None:
    body = {"source": PUBLIC_URL, "account_id": "acct-b"}
    assert (await ingest.call("PUT", "/v1/sources/pull-1", ingest.b, json=body))[0] == 200
    # A registering the same id registers A's own pull; B's entry is untouched
    body_a = {"source": PUBLIC_URL + "a", "account_id": "acct-a"}
    assert (await ingest.call("PUT", "/v1/sources/pull-1", ingest.a, json=body_a))[0] == 200
    _, listed = await ingest.call("GET", "/v1/sources", ingest.a)
    assert [(e["stream_id"], e["tenant"], e["account_id"]) for e in listed["sources"]] == [
        ("pull-1", "tenant-a", "acct-a")
    ]
    _, listed_b = await ingest.call("GET", "/v1/sources", ingest.b)
    assert [(e["stream_id"], e["account_id"]) for e in listed_b["sources"]] == [
        ("pull-1", "acct-b")
    ]
    # A removing pull-1 removes A's; B's stays, and removing it again reads as absent
    assert (await ingest.call("DELETE", "/v1/sources/pull-1", ingest.a))[0] == 200
    status, err = await ingest.call("DELETE", "/v1/sources/pull-1", ingest.a)
    assert status == 404 and err["error"] == "not_found"
    _, listed_b = await ingest.call("GET", "/v1/sources", ingest.b)
    assert [e["stream_id"] for e in listed_b["sources"]] == ["pull-1"]
    assert (await ingest.call("DELETE", "/v1/sources/pull-1", ingest.b))[0] == 200


async def test_tenants_cannot_register_files_or_internal_urls(ingest: Ingest) -> None:
    for source in ("/etc/passwd", "file:///etc/passwd", "rtsp://169.254.169.254/x"):
        body = {"source": source, "account_id": "acct"}
        status, err = await ingest.call("PUT", "/v1/sources/s", ingest.a, json=body)
        assert status == 400 and err["error"] == "url_refused", (source, err)


def test_operator_cli_registers_and_removes_per_tenant(settings: Settings) -> None:
    env = {**to_env(settings), "PATH": "/usr/bin:/bin"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "framewatch.cli", "sources", *args]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)

    for tenant in ("tenant-a", "tenant-b"):
        add = cli("add", PUBLIC_URL, "--stream-id", "cam", "--account-id", "x", "--tenant", tenant)
        assert add.returncode == 0, add.stderr
    assert cli("remove", "cam", "--tenant", "tenant-a").returncode == 0
    listed = json.loads(cli("list", "--json").stdout)
    assert [(e["tenant"], e["stream_id"]) for e in listed] == [("tenant-b", "cam")]
    gone = cli("remove", "cam", "--tenant", "tenant-a")
    assert gone.returncode != 0 and "tenant 'tenant-a'" in gone.stderr


async def test_a_cannot_acknowledge_bs_incident(settings: Settings) -> None:
    r = redisio.sync_client(settings)
    a, b = apikeys.create(settings, r, "tenant-a"), apikeys.create(settings, r, "tenant-b")
    s = settings.model_copy(
        update={"alerts": settings.alerts.model_copy(update={
            "http_port": 0, "oncall_keys_sha256": [apikeys.digest("on-call-token")]})}
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
    inc = inc.model_copy(update={"red_line": False})  # red lines: tests/alerts/test_ack_rights
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


# ---- the decision worker: ledgers, stream state, hot marks and ids are per tenant ----------


@pytest.fixture
def worker(settings: Settings, kafka_topics: object, tmp_path: Path) -> Iterator[Worker]:
    w = Worker(settings, tmp_path / "faust", tmp_path / "worker.log")
    w.start()
    yield w
    w.stop()
    print((tmp_path / "worker.log").read_text()[-3000:])


def _scores(tenant: str, stream: str, cats: dict[str, float], n: int, t0: float) -> list:
    return [
        (
            scope.key(tenant, stream),
            records.encode(
                scores(i, stream, cats=cats, account="acct-42", tenant=tenant, t0=t0).model_copy(
                    update={"frame_id": f"{stream}-{t0:g}-{i}"}  # the same in both tenants
                )
            ),
        )
        for i in range(n)
    ]


def _of(recs: list, cls: type) -> list:
    return [r for r in recs if isinstance(r, cls)]


@pytest.mark.timeout(240)
async def test_alphas_red_lines_never_move_betas_account_of_the_same_id(
    settings: Settings, worker: Worker
) -> None:
    """Issue 13.1: beta's acct-42 has one gore block (warn); alpha's acct-42 pages two red
    lines (suspend_stream, then suspend_account); beta's second block keeps beta at warn. Each
    tenant's enforcement names its own tenant and only its own decisions."""
    gore, csam = {"violence.gore": 0.95}, {"child_safety.csam": 0.97}
    await produce(settings, _scores("beta", "b-live", gore, 3, 1000.0))
    first = _of(await collect(settings, "enforcement", want=1, worker=worker), Enforcement)
    assert [(e.tenant, e.action) for e in first] == [("beta", "warn")]
    await produce(
        settings,
        _scores("alpha", "a-1", csam, 1, 2000.0)
        + _scores("alpha", "a-2", csam, 1, 2100.0)
        + _scores("beta", "b-live2", gore, 3, 3000.0),
    )
    decisions = _of(await collect(settings, "decisions", want=4, worker=worker), Decision)
    by_tenant: dict[str, set[str]] = {}
    for d in decisions:
        assert d.action == "block"
        by_tenant.setdefault(d.tenant, set()).add(d.decision_id)
    assert sorted((t, len(ids)) for t, ids in by_tenant.items()) == [("alpha", 2), ("beta", 2)]
    enf = _of(await collect(settings, "enforcement", want=3, worker=worker), Enforcement)
    seen = sorted((e.tenant, e.ladder_step, e.action) for e in enf)
    assert seen == [
        ("alpha", 3, "suspend_stream"),
        ("alpha", 4, "suspend_account"),
        ("beta", 1, "warn"),
    ]
    for e in enf:
        assert set(e.decision_ids) <= by_tenant[e.tenant]  # only its own tenant's decisions
    enf_keys = {m.key.decode() for m, _ in await consume_raw(settings, "enforcement", 3)}
    assert enf_keys == {"alpha/acct-42", "beta/acct-42"}

    env = {**env_for(settings, worker.data_dir), "PATH": "/usr/bin:/bin"}

    def show(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "framewatch.cli", "account", "show", "acct-42", *args]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)

    for tenant, action in (("alpha", "suspend_account"), ("beta", "warn")):
        out = show("--tenant", tenant, "--json")
        assert out.returncode == 0, out.stderr
        view = json.loads(out.stdout)
        assert (view["tenant"], view["action"]) == (tenant, action)
        assert {s["decision_id"] for s in view["strikes"]} == by_tenant[tenant]
    human = show("--tenant", "beta")
    assert "tenant beta" in human.stdout and "warn" in human.stdout
    missing = show("--tenant", "gamma")
    assert missing.returncode != 0 and "alpha, beta" in missing.stderr


@pytest.mark.timeout(240)
async def test_same_stream_id_in_two_tenants_keeps_two_states(
    settings: Settings, worker: Worker
) -> None:
    """alpha's stream-1 is blocked by a red line; beta's stream-1 still goes to review and then
    to block on its own frames, and only alpha's stream-1 in review is marked hot."""
    await produce(settings, _scores("alpha", "stream-1", {"child_safety.csam": 0.97}, 1, 1000.0))
    await collect(settings, "decisions", want=1, worker=worker, settle=0.5)
    hate = {"hate.speech": 0.6}
    await produce(
        settings,
        _scores("beta", "stream-1", hate, 3, 1100.0)
        + _scores("alpha", "stream-2", hate, 3, 1100.0)
        + _scores("beta", "stream-2", {"hate.speech": 0.05}, 3, 1100.0),
    )
    await collect(settings, "decisions", want=3, worker=worker, settle=0.5)
    await produce(settings, _scores("beta", "stream-1", {"violence.gore": 0.95}, 3, 1200.0))
    decisions = _of(await collect(settings, "decisions", want=4, worker=worker), Decision)
    got = sorted((d.tenant, d.stream_id, d.action) for d in decisions)
    assert got == [
        ("alpha", "stream-1", "block"),
        ("alpha", "stream-2", "review"),
        ("beta", "stream-1", "block"),
        ("beta", "stream-1", "review"),
    ]
    assert len({d.decision_id for d in decisions}) == 4
    r = redisio.sync_client(settings)
    assert r.get(redisio.key(settings, "hot", "alpha/stream-2")) == b"1"
    assert r.get(redisio.key(settings, "hot", "beta/stream-2")) is None
    states = await table_snapshot(settings, settings.topics.changelog("stream-state"))
    assert states["alpha/stream-1"]["state"] == "blocked"
    assert states["beta/stream-1"]["state"] == "blocked"
    # beta's stream-2 never left quiet, so the worker wrote no state for it (a quiet stream's
    # frames stay in memory, streams/state.py); had it been written, it would say ok
    assert states.get("beta/stream-2", {"state": "ok"})["state"] == "ok"
    alerts = _of(await collect(settings, "alerts", want=1, settle=0.5), Alert)
    assert [(a.tenant, a.stream_id) for a in alerts] == [("alpha", "stream-1")]


async def test_score_cache_never_answers_another_tenant(settings: Settings) -> None:
    client = redisio.async_client(settings)
    try:
        cache = ScoreCache(settings, "m@1", client)
        await cache.put("alpha", b"same-jpeg", Scored(scores={"sexual": 0.9}), None, None)
        hit = await cache.get("alpha", b"same-jpeg")
        assert hit is not None and hit[0].scores == {"sexual": 0.9}
        assert await cache.get("beta", b"same-jpeg") is None
    finally:
        await client.aclose()


@pytest.mark.timeout(240)
async def test_a_review_of_betas_block_touches_only_betas_stream_and_ledger(
    settings: Settings, worker: Worker
) -> None:
    gore = {"violence.gore": 0.95}
    await produce(
        settings,
        _scores("alpha", "stream-1", gore, 3, 1000.0)
        + _scores("beta", "stream-1", gore, 3, 1000.0),
    )
    blocks = _of(await collect(settings, "decisions", want=2, worker=worker), Decision)
    beta = next(d for d in blocks if d.tenant == "beta")
    env = {**env_for(settings, worker.data_dir), "PATH": "/usr/bin:/bin"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "framewatch.cli", *args]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)

    out = cli("review", "resolve", beta.decision_id, "--outcome", "overturned", "--reviewer", "r")
    assert out.returncode == 0, out.stderr
    assert "tenant beta" in out.stdout
    decisions = _of(await collect(settings, "decisions", want=3, worker=worker), Decision)
    allow = [d for d in decisions if d.action == "allow"]
    assert [(d.tenant, d.stream_id, d.corrects) for d in allow] == [
        ("beta", "stream-1", beta.decision_id)
    ]
    states = await table_snapshot(settings, settings.topics.changelog("stream-state"))
    assert states["alpha/stream-1"]["state"] == "blocked"
    assert states["beta/stream-1"]["state"] == "ok"
    for _ in range(60):  # the ledger side follows through the by-account topic
        ledgers = await table_snapshot(settings, settings.topics.changelog("account-ledger"))
        if not ledgers["beta/acct-42"]["strikes"]:
            break
        await asyncio.sleep(0.5)
    assert len(ledgers["alpha/acct-42"]["strikes"]) == 1
    assert ledgers["beta/acct-42"]["strikes"] == []
    for tenant, n in (("alpha", 0), ("beta", 1)):
        stats = json.loads(cli("review", "stats", "--tenant", tenant, "--json").stdout)
        assert (stats["tenant"], stats["reviews"]) == (tenant, n)
