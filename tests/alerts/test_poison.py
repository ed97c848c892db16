"""Poison alerts and a routing file HTTP cannot honour: refused clearly, never a dead router.

Regressions for issue 14.2: an alert with raised_at=1e300 made the router exit (and exit again
on every restart, on the same record); a routing file with user:pass@ in a webhook URL plus an
Authorization header validated, then killed the router on its first delivery.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from alerts.routing import RoutingError, parse
from framewatch import records
from framewatch.settings import Settings
from tests.alerts.conftest import SECRET, SinkServer, wait_for
from tests.alerts.test_router import alert, dead_letters, produce


def poisoned(field: str, raw_value: str) -> bytes:
    body = json.loads(records.encode(alert("inc-poison")))
    body[field] = "@@"
    return json.dumps(body).replace('"@@"', raw_value).encode()


async def test_alert_with_an_impossible_time_is_dead_lettered_and_the_next_one_pages(
    setup: Callable[..., Settings], sink_server: SinkServer, run_router: Any, kafka_topics: Any
) -> None:
    s = setup()
    await produce(s, raw=poisoned("raised_at", "1e300"))
    await produce(s, raw=poisoned("captured_at", "NaN"))
    await produce(s, alert("inc-good"))
    r = run_router(s)
    await wait_for(lambda: len(sink_server.accepted("/pd")) >= 1 or r.task.done(), what="a page")
    assert not r.task.done(), "the router exited"
    (pd,) = sink_server.accepted("/pd")
    assert pd.json()["dedup_key"] == "inc-good"
    dls = await dead_letters(s, 2)
    assert sorted(d.reason for d in dls) == ["invalid", "malformed"]
    for hit in sink_server.hits:  # what reached any sink is JSON a receiver can parse
        json.loads(hit.body, parse_constant=lambda c: pytest.fail(f"{c} sent to a sink"))


def test_routing_with_credentials_in_the_url_and_an_authorization_header_is_refused() -> None:
    text = f"""\
sinks:
  hook:
    type: webhook
    url: "https://user:pass@hooks.example.com/in"
    secret: {SECRET}
    headers: {{Authorization: "Bearer abc"}}
routes:
  - name: all
    sinks: [hook]
"""
    with pytest.raises(RoutingError, match=r"routing.yaml:\d+: sinks.hook: .*user:password@"):
        parse(text, "routing.yaml")
    # either one alone is fine
    parse(text.replace("user:pass@", ""), "routing.yaml")
    parse(text.replace('    headers: {Authorization: "Bearer abc"}\n', ""), "routing.yaml")


async def test_a_sink_aiohttp_cannot_post_to_fails_that_delivery_not_the_router() -> None:
    """Defence in depth: a request aiohttp refuses to build is a permanent failure."""
    from alerts.delivery import Deliverer
    from alerts.routing import Sink
    from framewatch.settings.alerts import AlertsSettings

    sink = Sink.model_construct(
        name="hook", type="webhook", url="http://u:p@127.0.0.1:9/x", routing_key=None,
        secret=SECRET, timeout_s=1.0, headers={"Authorization": "Bearer x"},
    )  # fmt: skip
    async with Deliverer(AlertsSettings(max_attempts=3)) as d:
        out = await asyncio.wait_for(d.send(sink, b"{}", {"Authorization": "Bearer x"}), 10)
    assert not out.ok and out.attempts == 1 and "u:p" not in out.error
