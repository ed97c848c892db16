"""Real local HTTP servers standing in for PagerDuty, Slack and a platform webhook."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from alerts.router import Router
from alerts.routing import load
from alerts.verify import SignatureError, verify
from framewatch.settings import Settings

SECRET = "test-secret"


@dataclass
class Hit:
    path: str
    body: bytes
    headers: dict[str, str]
    status: int
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class SinkServer:
    """Answers each request with the next scripted reply ('hang', 500, (429, retry_after), 200)."""

    script: list[Any] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    port: int = 0
    bad_signatures: int = 0
    refused: list[list[str]] = field(default_factory=list)

    @staticmethod
    def receiver_rules(path: str, body: bytes) -> list[str]:
        """/pd is PagerDuty Events v2 and /slack a Slack webhook: their published rules."""
        from tests.alerts.receivers import pagerduty_problems, slack_problems

        if path == "/pd":
            return pagerduty_problems(body)
        if path == "/slack":
            return slack_problems(json.loads(body))
        return []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def accepted(self, path: str | None = None) -> list[Hit]:
        return [h for h in self.hits if 200 <= h.status < 300 and (path is None or h.path == path)]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.path == "/hook":
            try:
                verify(SECRET, body, request.headers)
            except SignatureError:
                self.bad_signatures += 1
                self.hits.append(Hit(request.path, body, dict(request.headers), 401))
                return web.Response(status=401)
        refused = self.receiver_rules(request.path, body)
        if refused:  # what PagerDuty / Slack answer a body that breaks their published rules
            self.refused.append(refused)
            self.hits.append(Hit(request.path, body, dict(request.headers), 400))
            return web.json_response({"status": "invalid", "errors": refused}, status=400)
        reply = self.script.pop(0) if self.script else 200
        if reply == "hang":
            self.hits.append(Hit(request.path, body, dict(request.headers), 0))
            await asyncio.sleep(3600)
        headers = {}
        if isinstance(reply, tuple):
            reply, retry_after = reply
            headers["Retry-After"] = str(retry_after)
        self.hits.append(Hit(request.path, body, dict(request.headers), reply))
        code = 202 if reply == 200 and request.path == "/pd" else reply
        return web.json_response({"status": "ok" if code < 300 else "error"}, status=code,
                                 headers=headers)  # fmt: skip


async def start_sink_server() -> tuple[SinkServer, web.AppRunner]:
    """A real aiohttp server on 127.0.0.1 (a free port); clean up the runner when done."""
    srv = SinkServer()
    app = web.Application()
    app.router.add_post("/{tail:.*}", srv.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    srv.port = runner.addresses[0][1]
    return srv, runner


@pytest.fixture
async def sink_server() -> AsyncIterator[SinkServer]:
    srv, runner = await start_sink_server()
    yield srv
    await runner.cleanup()


def routing_yaml(base: str, *, escalation: bool = False) -> str:
    esc = "    escalation: [tier2]\n" if escalation else ""
    return f"""\
sinks:
  pd: {{type: pagerduty, url: "{base}/pd", routing_key: rk-123, timeout_s: 1}}
  slack: {{type: slack, url: "{base}/slack", timeout_s: 1}}
  platform: {{type: webhook, url: "{base}/hook", secret: {SECRET}, timeout_s: 1}}
  tier2: {{type: webhook, url: "{base}/tier2", secret: {SECRET}, timeout_s: 1}}
routes:
  - name: oncall
    match: {{types: [alert], red_line: true}}
    sinks: [pd, slack]
{esc}  - name: platform
    match: {{types: [alert, enforcement]}}
    sinks: [platform]
"""


FAST = {
    "max_attempts": 5,
    "backoff_base_s": 0.05,
    "backoff_max_s": 0.2,
    "request_timeout_s": 1.0,
    "breaker_failures": 50,
    "breaker_reset_s": 0.5,
    "escalate_after_s": 600,
    "escalation_check_s": 0.2,
    "http_port": 0,
}


async def wait_for(cond: Callable[[], Any], timeout: float = 30.0, what: str = "") -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def setup(
    make_settings: Callable[..., Settings], sink_server: SinkServer, tmp_path: Path
) -> Callable[..., Settings]:
    def build(escalation: bool = False, **alerts_kw: Any) -> Settings:
        f = tmp_path / "routing.yaml"
        f.write_text(routing_yaml(sink_server.url, escalation=escalation))
        return make_settings(alerts={**FAST, "routing_file": f, **alerts_kw})

    return build


class Running:
    def __init__(self, settings: Settings) -> None:
        self.router = Router(settings, load(settings.alerts.routing_file))
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.router.run(self.stop))

    async def close(self) -> None:
        """Stop the router; it must end within seconds (its tasks end through
        framewatch.tasks), and an error it ended with fails the test."""
        self.stop.set()
        done, _ = await asyncio.wait({self.task}, timeout=15)
        assert done, "the router was still running 15 s after it was asked to stop"
        self.task.result()


@pytest.fixture
async def run_router() -> AsyncIterator[Callable[[Settings], Running]]:
    started: list[Running] = []

    def start(s: Settings) -> Running:
        started.append(Running(s))
        return started[-1]

    yield start
    for r in started:
        if not r.task.done():
            await r.close()
