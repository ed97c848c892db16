"""Who may acknowledge what, on the real router, broker, Redis and local sinks.

Regressions for issue 13.7: a tenant's API key acknowledged its own red-line incidents and so
silenced their escalation; ``?by=alice%0A...`` wrote a forged line into the router's log.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from framewatch import apikeys, fields, records, redisio
from framewatch.logs import TextFormatter
from framewatch.settings import Settings
from tests.alerts.conftest import SinkServer, wait_for
from tests.alerts.test_router import alert, produce

ONCALL_KEY = "fwo_test-oncall-key"


async def _ack(port: int, incident: str, key: str, by: str | None = None) -> tuple[int, dict]:
    params = {"by": by} if by is not None else {}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"http://127.0.0.1:{port}/v1/alerts/{incident}/ack",
            params=params,
            headers={"Authorization": f"Bearer {key}"},
        ) as resp,
    ):
        return resp.status, await resp.json()


async def test_only_on_call_acknowledges_a_red_line_and_escalation_goes_on(
    setup: Callable[..., Settings], sink_server: SinkServer, run_router: Any, kafka_topics: Any
) -> None:
    s = setup(escalation=True, escalate_after_s=5, oncall_keys_sha256=[apikeys.digest(ONCALL_KEY)])
    tenant_key = apikeys.create(s, redisio.sync_client(s), "default")  # the alerts' tenant
    r = run_router(s)
    await produce(s, alert("inc-red"), alert("inc-red2"), alert("inc-plain", red_line=False))
    await wait_for(lambda: len(sink_server.accepted("/pd")) == 2, what="both red-line pages")
    await wait_for(lambda: r.router.http_port, what="ack endpoint")
    port = r.router.http_port
    status, body = await _ack(port, "inc-red", tenant_key, by="platform-bot")
    assert status == 403 and body["error"] == "oncall_only"
    assert "on-call key" in body["message"] and "escalation goes on" in body["message"]
    assert (await _ack(port, "inc-plain", tenant_key))[0] == 200  # its own ordinary incident
    assert (await _ack(port, "inc-red2", ONCALL_KEY, by="alice@example.com"))[0] == 200
    assert (await _ack(port, "inc-red", "fwo_not-a-key"))[0] == 401
    # the refused ack did not stop the red line's escalation; the on-call ack did stop its own
    await wait_for(lambda: sink_server.accepted("/tier2"), what="escalation of inc-red")
    await asyncio.sleep(1.5)
    escalated = [records.decode(h.body, records.Alert).incident_id
                 for h in sink_server.accepted("/tier2")]  # fmt: skip
    assert escalated == ["inc-red"]


async def test_ack_by_is_an_id_and_logs_stay_one_line_a_record(
    setup: Callable[..., Settings], sink_server: SinkServer, run_router: Any, kafka_topics: Any
) -> None:
    s = setup(oncall_keys_sha256=[apikeys.digest(ONCALL_KEY)])
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(TextFormatter("alerts"))
    logger, level = logging.getLogger("alerts"), logging.getLogger("alerts").level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        r = run_router(s)
        await produce(s, alert("inc-log"))
        await wait_for(lambda: sink_server.accepted("/pd"), what="the page")
        await wait_for(lambda: r.router.http_port, what="ack endpoint")
        forged = "alice\n12:00:00 I alerts   acknowledged by root"
        status, body = await _ack(r.router.http_port, "inc-log", ONCALL_KEY, by=forged)
        assert status == 422 and body["error"] == "bad_by"
        assert fields.ID_PATTERN in body["message"]
        assert not redisio.sync_client(s).exists(redisio.key(s, "alerts", "ack", "inc-log"))
        status, _ = await _ack(r.router.http_port, "inc-log", ONCALL_KEY, by="alice@example.com")
        assert status == 200
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    lines = out.getvalue().splitlines()
    assert any("acknowledged by alice@example.com (on-call)" in ln for ln in lines)
    assert not any("by root" in ln for ln in lines)
    # whatever a client's string reaches a text log line, it stays on that line
    rec = logging.LogRecord("alerts", logging.INFO, __file__, 1, "got %s", (forged,), None)
    assert "\n" not in TextFormatter("alerts").format(rec)
    assert "alice\\n12:00:00" in TextFormatter("alerts").format(rec)
