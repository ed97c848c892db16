"""Issue 14.7 end to end on the real broker: an overturned red-line block resolves its page.

Worker (subprocess) -> trigger alert; `framewatch review resolve --outcome overturned` -> the
worker clears the stream and sends a resolve alert with the same incident id -> the router
sends PagerDuty a resolve event with the trigger's dedup_key and Slack a follow-up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.router import Router
from alerts.routing import parse
from framewatch import records
from framewatch.local import free_port
from framewatch.records import Alert, Decision
from framewatch.settings import Settings
from tests.alerts.conftest import FAST, SinkServer, start_sink_server, wait_for
from tests.streams.helpers import scores
from tests.streams.test_reviews import cli, until
from tests.streams.worker import Worker, produce

pytestmark = pytest.mark.integration


@pytest.fixture
def worker(settings: Settings, kafka_topics: dict[str, str], tmp_path: Path) -> Iterator[Worker]:
    w = Worker(settings, tmp_path / "faust", tmp_path / "worker.log", metrics_port=free_port())
    w.start()
    yield w
    w.stop()
    print((tmp_path / "worker.log").read_text()[-3000:])


async def test_overturned_red_line_block_resolves_the_pagerduty_incident(
    settings: Settings, worker: Worker
) -> None:
    t0 = time.time() - 60
    red = [scores(i, "live-9", cats={"child_safety.csam": 0.97}, account="acc9", t0=t0)
           for i in range(2)]  # fmt: skip
    await produce(settings, [(sc.stream_id, records.encode(sc)) for sc in red])
    recs = await until(settings, "decisions", lambda rs: any(isinstance(r, Decision) for r in rs),
                       worker)  # fmt: skip
    (block,) = [d for d in recs if isinstance(d, Decision)]
    assert block.action == "block" and block.red_line

    done = cli(settings, worker, "review", "resolve", block.decision_id, "--outcome", "overturned",
               "--reviewer", "ana")  # fmt: skip
    assert done.returncode == 0, done.stderr
    alerts = await until(
        settings, "alerts", lambda rs: len([r for r in rs if isinstance(r, Alert)]) >= 2, worker
    )
    trigger, resolve = [a for a in alerts if isinstance(a, Alert)]
    assert (trigger.kind, resolve.kind) == ("trigger", "resolve")
    assert resolve.incident_id == trigger.incident_id and resolve.stream_id == "live-9"

    srv, runner = await start_sink_server()
    try:
        await _route(settings, srv)
    finally:
        await runner.cleanup()
    pd = [h.json() for h in srv.accepted("/pd")]
    assert [e["event_action"] for e in pd] == ["trigger", "resolve"]
    assert pd[1] == {"routing_key": "rk", "dedup_key": trigger.incident_id,
                     "event_action": "resolve"}  # fmt: skip
    slack = [h.json()["text"] for h in srv.accepted("/slack")]
    assert len(slack) == 2 and "resolved" in slack[1] and "live-9" in slack[1]


async def _route(settings: Settings, srv: SinkServer) -> None:
    routing = parse(f"""\
sinks:
  pd: {{type: pagerduty, url: "{srv.url}/pd", routing_key: rk}}
  slack: {{type: slack, url: "{srv.url}/slack"}}
routes:
  - name: red
    match: {{types: [alert], red_line: true}}
    sinks: [pd, slack]
""")
    s = settings.model_copy(
        update={"alerts": settings.alerts.model_copy(update={**FAST, "group_id": "e2e-router"})}
    )
    stop = asyncio.Event()
    task = asyncio.create_task(Router(s, routing).run(stop))
    try:
        await wait_for(lambda: len(srv.accepted("/slack")) >= 2 or task.done(), what="2 pages")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
