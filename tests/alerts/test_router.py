"""The router against the REAL broker/Redis and real local HTTP sinks."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import aiohttp

from framewatch import apikeys, kafkaio, records
from framewatch.settings import Settings, to_env
from tests.alerts.conftest import SinkServer, wait_for


def alert(incident: str = "inc-1", *, red_line: bool = True, **kw: Any) -> records.Alert:
    now = records.now()
    base: dict[str, Any] = dict(
        incident_id=incident, severity="critical", category="csam.match", red_line=red_line,
        stream_id="stream-" + incident, account_id="acct-" + incident, summary="hash bank match",
        evidence_frame_ids=["f1"], captured_at=now, raised_at=now,
    )  # fmt: skip
    base.update(kw)
    return records.Alert(**base)


async def produce(settings: Settings, *recs: records.Alert, raw: bytes | None = None) -> None:
    p = kafkaio.producer(settings)
    await p.start()
    try:
        for r in recs:
            key = r.incident_id.encode()
            await p.send_and_wait(settings.topics.name("alerts"), records.encode(r), key=key)
        if raw is not None:
            await p.send_and_wait(settings.topics.name("alerts"), raw, key=b"junk")
    finally:
        await p.stop()


async def dead_letters(settings: Settings, n: int, timeout: float = 20) -> list[records.DeadLetter]:
    c = kafkaio.consumer(settings, settings.topics.name("dead_letters"), group_id="dl-reader")
    await c.start()
    out: list[records.DeadLetter] = []
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while len(out) < n and loop.time() < end:
            for ms in (await c.getmany(timeout_ms=300)).values():
                out += [records.decode(m.value, records.DeadLetter) for m in ms]
    finally:
        await c.stop()
    return out


async def test_page_arrives_once_even_when_replayed(
    setup: Callable[..., Settings], sink_server: SinkServer, run_router: Any, kafka_topics: Any
) -> None:
    s = setup()
    a = alert("inc-replay")
    await produce(s, a, a, raw=b"not a record")
    r = run_router(s)
    await wait_for(lambda: len(sink_server.accepted()) >= 3, what="pd, slack, platform")
    # a replay after a restart from offset 0 (new consumer group) must not page again
    await r.close()
    r2 = run_router(setup(group_id="another-group"))
    await produce(s, a)
    await asyncio.sleep(3)
    await r2.close()
    pd = sink_server.accepted("/pd")
    assert len(pd) == 1 and len(sink_server.accepted("/slack")) == 1
    assert len(sink_server.accepted("/hook")) == 1 and sink_server.bad_signatures == 0
    ev = pd[0].json()
    assert ev["routing_key"] == "rk-123" and ev["event_action"] == "trigger"
    assert ev["dedup_key"] == "inc-replay"
    assert ev["payload"]["severity"] == "critical" and ev["payload"]["source"] == a.stream_id
    assert set(ev["payload"]) >= {"summary", "source", "severity", "timestamp"}
    slack = sink_server.accepted("/slack")[0].json()["text"]
    assert "csam.match" in slack and a.account_id in slack and "hash bank match" in slack
    hook = records.decode(sink_server.accepted("/hook")[0].body, records.Alert)
    assert hook == a
    dls = await dead_letters(s, 2)  # the junk was consumed by both groups: dead-lettered twice
    assert {(d.reason, d.payload) for d in dls} == {("malformed", b"not a record")}


async def test_the_router_stops_when_asked_though_redis_swallows_a_cancel(
    setup: Callable[..., Settings], run_router: Any, kafka_topics: Any
) -> None:
    """On stop the router cancels its escalation loop. redis-py loses a cancel that lands in
    one of its socket writes (asyncio.wait_for on Python 3.11), and the loop then ran on: the
    router never finished stopping (framewatch.tasks)."""
    s = setup(escalation_check_s=0.001)  # the loop is in a Redis call most of the time
    for _ in range(8):  # a stop hit the swallowing write in about 3 of 10 before the fix
        r = run_router(s)
        await wait_for(lambda r=r: r.router.http_port, what="the router's start")
        await asyncio.sleep(0.3)
        await r.close()  # fails unless it ends within 15 s, cleanly


async def test_resolve_resolves_the_pagerduty_incident(
    setup: Callable[..., Settings], sink_server: SinkServer, run_router: Any, kafka_topics: Any
) -> None:
    s = setup()
    a = alert("inc-res")
    await produce(s, a, a.model_copy(update={"kind": "resolve"}))
    run_router(s)
    await wait_for(lambda: len(sink_server.accepted("/pd")) >= 2, what="trigger + resolve")
    evs = [h.json() for h in sink_server.accepted("/pd")]
    assert [e["event_action"] for e in evs] == ["trigger", "resolve"]
    assert evs[1] == {"routing_key": "rk-123", "dedup_key": "inc-res", "event_action": "resolve"}


async def test_sink_failing_three_times_then_recovering_gets_the_alert(
    setup: Callable[..., Settings], sink_server: SinkServer, run_router: Any, kafka_topics: Any
) -> None:
    s = setup()
    sink_server.script = [500, "hang", (429, 1)]  # to whichever sink asks first
    await produce(s, alert("inc-flaky", red_line=False))  # platform route only
    run_router(s)
    await wait_for(lambda: len(sink_server.accepted("/hook")) == 1, what="delivery after retries")
    assert [h.status for h in sink_server.hits] == [500, 0, 429, 200]
    # backoff is capped at 0.2 s in these settings: the 1 s gap is the sink's Retry-After
    assert sink_server.hits[3].at - sink_server.hits[2].at >= 0.95
    assert await dead_letters(s, 1, timeout=2) == []


async def test_sink_that_never_recovers_leaves_a_dead_letter(
    setup: Callable[..., Settings], sink_server: SinkServer, run_router: Any, kafka_topics: Any
) -> None:
    s = setup(max_attempts=3)
    sink_server.script = [503] * 3
    await produce(s, alert("inc-dead", red_line=False))
    run_router(s)
    dls = await dead_letters(s, 1)
    assert len(dls) == 1 and dls[0].reason == "delivery_failed"
    assert "platform" in dls[0].error and "503" in dls[0].error
    assert records.decode(dls[0].payload, records.Alert).incident_id == "inc-dead"
    assert len(sink_server.hits) == 3


async def test_unacknowledged_red_line_alert_escalates_acked_one_does_not(
    setup: Callable[..., Settings], sink_server: SinkServer, run_router: Any, kafka_topics: Any
) -> None:
    s = setup(escalation=True, escalate_after_s=4, oncall_keys_sha256=[apikeys.digest("t0k")])
    r = run_router(s)
    await produce(s, alert("inc-esc"), alert("inc-ack"))
    await wait_for(lambda: len(sink_server.accepted("/pd")) == 2, what="both pages")
    await wait_for(lambda: r.router.http_port, what="ack endpoint")
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{r.router.http_port}/v1/alerts/inc-ack/ack"
        async with http.post(url) as resp:
            assert resp.status == 401  # no token
        auth = {"Authorization": "Bearer t0k"}
        async with http.post(url, headers=auth) as resp:
            assert resp.status == 200
        async with http.post(url.replace("inc-ack", "nope"), headers=auth) as resp:
            assert resp.status == 404
    # the ack reaches PagerDuty too (a body its published schema accepts: the stand-in checks)
    await wait_for(
        lambda: [
            h for h in sink_server.accepted("/pd") if h.json()["event_action"] == "acknowledge"
        ],
        what="acknowledge event",
    )
    (ack,) = [
        h.json() for h in sink_server.accepted("/pd") if h.json()["event_action"] == "acknowledge"
    ]
    assert ack == {"routing_key": "rk-123", "dedup_key": "inc-ack", "event_action": "acknowledge"}
    await wait_for(lambda: sink_server.accepted("/tier2"), what="escalation")
    await asyncio.sleep(1)
    tier2 = sink_server.accepted("/tier2")
    assert len(tier2) == 1 and tier2[0].headers["X-Framewatch-Escalation-Tier"] == "1"
    assert records.decode(tier2[0].body, records.Alert).incident_id == "inc-esc"


async def test_sigkill_mid_retry_then_restart_delivers_exactly_once(
    setup: Callable[..., Settings], sink_server: SinkServer, kafka_topics: Any
) -> None:
    s = setup(backoff_base_s=1.0, backoff_max_s=1.0)
    sink_server.script = [500, 500]
    await produce(s, alert("inc-kill", red_line=False))
    env = {**os.environ, **to_env(s), "FRAMEWATCH_METRICS__ENABLED": "false"}
    cmd = [sys.executable, "-m", "framewatch.cli", "alerts", "serve"]
    proc = subprocess.Popen(cmd, env=env)
    try:
        await wait_for(lambda: len(sink_server.hits) >= 1, what="first (failing) try")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert sink_server.accepted() == []
        sink_server.script = []
        proc = subprocess.Popen(cmd, env=env)
        await wait_for(lambda: sink_server.accepted("/hook"), what="delivery after restart")
        await asyncio.sleep(2)
        assert len(sink_server.accepted("/hook")) == 1
    finally:
        proc.terminate()
        proc.wait(20)


async def test_one_stream_cannot_flood_later_alerts_fold_into_the_first(
    setup: Callable[..., Settings], sink_server: SinkServer, run_router: Any, kafka_topics: Any
) -> None:
    s = setup(rate_window_s=60)
    same = {"stream_id": "s-noisy", "account_id": "a-noisy", "red_line": False}
    await produce(
        s, *(alert(f"inc-f{i}", **same) for i in range(5)), alert("inc-other", red_line=False)
    )
    run_router(s)
    await wait_for(lambda: len(sink_server.accepted("/hook")) >= 2, what="two pages")
    await asyncio.sleep(2)
    ids = sorted(records.decode(h.body, records.Alert).incident_id for h in sink_server.accepted())
    # alerts are keyed by incident, so which of the noisy stream's alerts is first may vary
    assert len(ids) == 2 and ids[0].startswith("inc-f") and ids[1] == "inc-other"


async def test_enforcement_reaches_the_platform_webhook_signed(
    setup: Callable[..., Settings], sink_server: SinkServer, run_router: Any, kafka_topics: Any
) -> None:
    s = setup()
    e = records.Enforcement(enforcement_id="enf-1", account_id="acct-9", action="suspend_stream",
                            ladder_step=2, policy_version="p1", issued_at=records.now())  # fmt: skip
    p = kafkaio.producer(s)
    await p.start()
    await p.send_and_wait(s.topics.name("enforcement"), records.encode(e), key=b"acct-9")
    await p.stop()
    run_router(s)
    await wait_for(lambda: sink_server.accepted("/hook"), what="enforcement webhook")
    hit = sink_server.accepted("/hook")[0]
    assert records.decode(hit.body, records.Enforcement) == e and sink_server.bad_signatures == 0
    assert hit.headers["X-Framewatch-Record-Type"] == "enforcement"


async def _run(cmd: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *cmd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_alerts_test_command_sends_a_marked_test_alert(
    setup: Callable[..., Settings], sink_server: SinkServer
) -> None:
    s = setup()
    env = {**os.environ, "FRAMEWATCH_REDIS_URL": s.redis_url.get_secret_value(),
           "FRAMEWATCH_ALERTS__ROUTING_FILE": str(s.alerts.routing_file)}  # fmt: skip
    cmd = [sys.executable, "-m", "framewatch.cli", "alerts", "test", "--route", "oncall", "--json"]
    rc, out, err = await _run(cmd, env)
    assert rc == 0, err
    result = json.loads(out)
    assert [r["sink"] for r in result["sinks"]] == ["pd", "slack"]
    pd = [h.json() for h in sink_server.hits if h.path == "/pd"]
    assert pd[0]["payload"]["summary"].startswith("[TEST]")
    assert pd[0]["payload"]["custom_details"]["test"] is True
    assert "TEST ALERT" in next(h.json() for h in sink_server.hits if h.path == "/slack")["text"]
    rc, _, err = await _run([*cmd[:-3], "--route", "nope"], env)
    assert rc == 1 and "no route named 'nope'" in err
