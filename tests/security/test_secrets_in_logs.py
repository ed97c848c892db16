"""Webhook secrets never reach logs, metric labels or dead-letter records.

The real `framewatch alerts serve` runs with a signed webhook (secret), a PagerDuty sink
(routing key), a Slack-style URL whose path is its token, a sink header with a bearer token, and
a sink that never answers (so errors are logged and dead-lettered). Deliveries are verified with
the secret (it is really used); then the process's DEBUG logs, text and JSON, its /metrics
page and the dead-letter topic are searched for every secret.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from alerts.verify import SignatureError, verify
from framewatch import kafkaio, records
from framewatch.local import free_port
from framewatch.settings import Settings, to_env
from tests.ingest.helpers import consume

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SECRETS = {
    "webhook": "whsec-Zq81xPLmWv02",
    "pagerduty": "pdkey-R7uTq0aa91bc",
    "slack_path": "T0001/B0002/slacktok3nXYZ",
    "header": "hdrtoken-Kx55Lm",
    "dead_path": "deadpathtok-77Qa",
}


def routing(base: str, dead: str) -> str:
    s = SECRETS
    return f"""\
sinks:
  hook: {{type: webhook, url: "{base}/hook", secret: "{s["webhook"]}", timeout_s: 1,
          headers: {{Authorization: "Bearer {s["header"]}"}}}}
  pd: {{type: pagerduty, url: "{base}/pd", routing_key: "{s["pagerduty"]}", timeout_s: 1}}
  slack: {{type: slack, url: "{base}/services/{s["slack_path"]}", timeout_s: 1}}
  dead: {{type: slack, url: "{dead}/services/{s["dead_path"]}", timeout_s: 0.5}}
routes:
  - name: all
    match: {{types: [alert]}}
    sinks: [hook, pd, slack, dead]
"""


async def run_router(
    settings: Settings, routing_file: Path, log_json: bool, metrics_port: int
) -> tuple[str, str]:
    """Run the router until all sinks were tried; its stderr and its /metrics page."""
    env = {**os.environ, **to_env(settings), "FRAMEWATCH_ALERTS__ROUTING_FILE": str(routing_file),
           "FRAMEWATCH_LOG_LEVEL": "DEBUG", "FRAMEWATCH_METRICS__ENABLED": "true",
           "FRAMEWATCH_METRICS__ALERTS_PORT": str(metrics_port)}  # fmt: skip
    cmd = [sys.executable, "-m", "framewatch.cli", *(["--log-json"] if log_json else []),
           "alerts", "serve"]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(*cmd, env=env, stderr=asyncio.subprocess.PIPE)
    try:
        dls = await consume(settings, "dead_letters", 1, timeout=60)  # the dead sink gave up
        assert dls, "the unreachable sink was never dead-lettered"
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"http://127.0.0.1:{metrics_port}/metrics") as r,
        ):
            metrics_text = await r.text()
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    return err.decode(), metrics_text


@pytest.mark.parametrize("log_json", [False, True], ids=["text-logs", "json-logs"])
async def test_secrets_never_in_logs_metrics_or_dead_letters(
    make_settings: Callable[..., Settings], tmp_path: Path, log_json: bool
) -> None:
    verified: list[str] = []
    replies = {"/hook": [500], "/pd": [500]}  # one failure each: the retry path logs too

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        if request.path == "/hook":
            try:
                verify(SECRETS["webhook"], body, request.headers)
            except SignatureError:
                return web.Response(status=401)
            assert request.headers["Authorization"] == f"Bearer {SECRETS['header']}"
        script = replies.get(request.path, [])
        if script:
            return web.json_response({"echo": "nope"}, status=script.pop(0))
        verified.append(request.path)
        return web.json_response({"status": "ok"}, status=202)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    f = tmp_path / "routing.yaml"
    f.write_text(routing(base, dead))
    s = make_settings(alerts={"max_attempts": 2, "backoff_base_s": 0.05, "backoff_max_s": 0.1,
                              "http_port": 0})  # fmt: skip
    await kafkaio.create_topics(s)
    now = records.now()
    alert = records.Alert(
        incident_id="inc-secret", severity="critical", category="csam.match", red_line=True,
        stream_id="s1", account_id="a1", summary="x", captured_at=now, raised_at=now,
    )  # fmt: skip
    p = kafkaio.producer(s)
    await p.start()
    await p.send_and_wait(s.topics.name("alerts"), records.encode(alert), key=b"inc-secret")
    await p.stop()
    try:
        logs, metrics_text = await run_router(s, f, log_json, free_port())
    finally:
        await runner.cleanup()
    # the secrets were really in use: signed and authorized deliveries were accepted
    assert {"/hook", "/pd"} <= set(verified) and any(v.startswith("/services/") for v in verified)
    assert "retry" in logs and "dead-lettered" in logs  # the error paths did log
    assert 'framewatch_alert_deliveries_total{outcome="delivered"' in metrics_text
    dls = await consume(s, "dead_letters", 1, timeout=5)
    dl_text = " ".join(d.error for d in dls)
    for name, secret in SECRETS.items():
        assert secret not in logs, f"{name} secret in the logs"
        assert secret not in metrics_text, f"{name} secret in /metrics"
        assert secret not in dl_text, f"{name} secret in a dead-letter record"
