"""A dead sink beside a live one: the live sink's red-line page does not wait (issue 14.3).

Two real aiohttp receivers on 127.0.0.1: tenant A's webhook answers 500, tenant B's PagerDuty
works. B's red-line page must arrive while A's sink is still being retried (before main, the
router finished every retry of a batch before it read the next one), and a router restart in
the middle must neither lose A's alerts nor page B twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from framewatch.settings import Settings
from tests.alerts.conftest import FAST, SECRET, start_sink_server, wait_for
from tests.alerts.test_router import alert, produce

ROUTING = """\
sinks:
  dead: {{type: webhook, url: "{dead}/hook", secret: {secret}, timeout_s: 1}}
  live: {{type: pagerduty, url: "{live}/pd", routing_key: rk-b, timeout_s: 1}}
routes:
  - name: tenant-a
    match: {{types: [alert], tenant: [a]}}
    sinks: [dead]
  - name: tenant-b
    match: {{types: [alert], tenant: [b], red_line: true}}
    sinks: [live]
"""
SLOW_RETRIES = {**FAST, "max_attempts": 8, "backoff_base_s": 0.5, "backoff_max_s": 2.0,
                "breaker_failures": 2, "breaker_reset_s": 2.0, "rate_window_s": 0}  # fmt: skip


async def test_dead_sink_delays_nobody_else_and_a_restart_loses_and_doubles_nothing(
    make_settings: Callable[..., Settings], run_router: Any, kafka_topics: Any, tmp_path: Path
) -> None:
    dead, dead_runner = await start_sink_server()
    live, live_runner = await start_sink_server()
    try:
        dead.script = [500] * 10_000
        f = tmp_path / "routing.yaml"
        f.write_text(ROUTING.format(dead=dead.url, live=live.url, secret=SECRET))
        s = make_settings(alerts={**SLOW_RETRIES, "routing_file": f})
        a_alerts = [alert(f"a-{i}", red_line=True, tenant="a") for i in range(5)]
        await produce(s, *a_alerts)
        r = run_router(s)
        await wait_for(lambda: len(dead.hits) >= 5, what="the dead sink's first tries")
        t_b = time.monotonic()
        await produce(s, alert("b-red", tenant="b"))
        await wait_for(lambda: live.accepted("/pd"), what="tenant b's page")
        page = live.accepted("/pd")[0]
        print(f"live red-line page {page.at - t_b:.2f}s after it was produced")
        assert page.json()["dedup_key"] == "b-red"
        # it came while the dead sink was still being retried, not after its budget was spent
        assert any(h.at > page.at for h in dead.hits) or len(dead.hits) < 5 * 8

        # restart mid-retry: the commit stayed behind a-0..a-4, so they are re-read; b-red is not
        # paged again (its sent mark is in Redis)
        await r.close()
        dead.script = []  # the sink recovers
        r2 = run_router(s)
        await wait_for(lambda: len(dead.accepted("/hook")) >= 5, what="tenant a's alerts")
        await asyncio.sleep(2)
        await r2.close()
        got = sorted(h.json()["incident_id"] for h in dead.accepted("/hook"))
        assert got == sorted(a.incident_id for a in a_alerts)
        assert [h.json()["dedup_key"] for h in live.accepted("/pd")] == ["b-red"]
    finally:
        await dead_runner.cleanup()
        await live_runner.cleanup()
