"""Prometheus is the receiver of our metrics and rules: promtool checks them, and each
service's /metrics holds its own series, created at start so the first failure is seen."""

from __future__ import annotations

import ast
import asyncio
import importlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from framewatch import metrics
from framewatch.kafkaio import create_topics
from framewatch.local import free_port
from framewatch.settings import Settings, to_env

PROM = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed: `apt-get install prometheus` (Debian; .ci/run installs it)",
)
# what the `framewatch` command imports: every stage's modules are loaded in every process
STAGE_MODULES = {
    "ingest": ["ingest.metrics", "ingest.runner", "ingest.push"],
    "scoring": ["scoring.service", "scoring.model", "scoring.cache"],
    "streams": ["streams.app", "streams.app_audit", "streams.app_review", "streams.policy"],
    "alerts": ["alerts.router", "alerts.delivery"],
}
OWNER_PREFIXES = {
    "ingest": ("framewatch_ingest_", "framewatch_stream_last_frame"),
    "scoring": ("framewatch_scoring_", "framewatch_scorer_"),
    "streams": ("framewatch_streams_", "framewatch_audit_", "framewatch_review_"),
    "alerts": ("framewatch_alerts_", "framewatch_alert_"),
}


def promtool(*args: str, cwd: Path = PROM) -> str:
    assert PROMTOOL is not None
    p = subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert p.returncode == 0, f"promtool {' '.join(args)}:\n{p.stdout}\n{p.stderr}"
    return p.stdout + p.stderr


@needs_promtool
def test_rules_unit_tests_pass_including_first_failed_red_line_delivery() -> None:
    out = promtool("test", "rules", "rules.test.yml")
    assert "SUCCESS" in out
    tests = yaml.safe_load((PROM / "rules.test.yml").read_text())["tests"]
    named = {t["alertname"] for case in tests for t in case["alert_rule_test"]}
    assert "FramewatchAlertDeliveryFailing" in named


@needs_promtool
def test_rules_and_configs_are_clean(tmp_path: Path) -> None:
    assert "7 rules found" in promtool("check", "rules", "rules.yml")
    promtool("check", "config", "prometheus.local.yml")
    # the compose config names the rules where the container mounts them: check it against ours
    (tmp_path / "rules.yml").write_text((PROM / "rules.yml").read_text())
    text = (PROM / "prometheus.yml").read_text().replace("/etc/prometheus/rules.yml", "rules.yml")
    (tmp_path / "prometheus.yml").write_text(text)
    assert "1 rule files found" in promtool("check", "config", "prometheus.yml", cwd=tmp_path)


def scrape(stage: str) -> str:
    """The stage's real /metrics page, served the way the service serves it, in a process
    that has loaded every stage's modules (as the `framewatch` command does)."""
    for mods in STAGE_MODULES.values():
        for m in mods:
            importlib.import_module(m)
    port = free_port()
    metrics.serve(stage, "127.0.0.1", port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return r.read().decode()


@pytest.mark.parametrize("stage", list(STAGE_MODULES))
def test_each_service_exports_only_its_own_metrics(stage: str) -> None:
    names = {f.name for f in text_string_to_metric_families(scrape(stage))}
    mine = [n for n in names if n.startswith(OWNER_PREFIXES[stage])]
    others = [
        n for s, pre in OWNER_PREFIXES.items() if s != stage for n in names if n.startswith(pre)
    ]
    assert mine, f"{stage} serves none of its own metrics"
    assert others == [], f"{stage}'s /metrics serves other stages' metrics"
    assert "framewatch_dead_letters" in names and "framewatch_up" in names  # the shared core


@needs_promtool
@pytest.mark.parametrize("stage", list(STAGE_MODULES))
def test_promtool_check_metrics_is_clean_on_each_service(stage: str) -> None:
    assert PROMTOOL is not None
    p = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=scrape(stage), capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert p.returncode == 0 and not p.stdout.strip(), p.stdout + p.stderr


def series(page: str) -> set[tuple[str, frozenset[tuple[str, str]]]]:
    return {
        (smp.name, frozenset(smp.labels.items()))
        for fam in text_string_to_metric_families(page)
        for smp in fam.samples
    }


def test_series_the_rules_read_exist_from_the_start() -> None:
    """Each service creates at start every sink's failed-delivery series and every dead-letter
    reason (at 0; the real alerts service below shows the 0), so the first failure moves
    increase() and pages. (Other tests in this process may have counted some already.)"""
    from alerts.delivery import init_series
    from streams.app import init_series as streams_init

    init_series(["pagerduty-oncall"])
    metrics.init_series("alerts", dead_letter_reasons=["delivery_failed"])
    have = series(scrape("alerts"))
    deliveries = {"outcome": "failed", "sink": "pagerduty-oncall"}
    assert ("framewatch_alert_deliveries_total", frozenset(deliveries.items())) in have
    for reason in ("delivery_failed", "malformed", "unsupported_version"):
        labels = frozenset({"reason": reason, "stage": "alerts"}.items())
        assert ("framewatch_dead_letters_total", labels) in have
    streams_init()
    have = series(scrape("streams"))
    blocks = frozenset({"action": "block", "category": "child_safety"}.items())
    assert ("framewatch_decisions_total", blocks) in have
    count = frozenset({"action": "block"}.items())
    assert ("framewatch_capture_to_decision_seconds_count", count) in have


def test_the_real_alerts_service_starts_with_its_failure_series_at_zero(
    settings: Settings, tmp_path: Path
) -> None:
    """`framewatch alerts serve` as a user starts it: before any record, /metrics already has
    every sink's failed-delivery series at 0, only alerts' own and core series, lint-clean."""
    routing = tmp_path / "routing.yaml"
    routing.write_text(
        "sinks:\n"
        '  oncall: {type: pagerduty, url: "http://127.0.0.1:9/pd", routing_key: rk}\n'
        '  chat: {type: slack, url: "http://127.0.0.1:9/slack"}\n'
        "routes:\n  - {name: red, match: {types: [alert], red_line: true}, sinks: [oncall, chat]}\n"
    )
    asyncio.run(create_topics(settings))
    port = free_port()
    env = {**os.environ, **to_env(settings), "FRAMEWATCH_ALERTS__ROUTING_FILE": str(routing),
           "FRAMEWATCH_METRICS__ENABLED": "true", "FRAMEWATCH_METRICS__ALERTS_PORT": str(port),
           "FRAMEWATCH_ALERTS__HTTP_PORT": "0"}  # fmt: skip
    cmd = [sys.executable, "-m", "framewatch.cli", "alerts", "serve"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    want = 'framewatch_alert_deliveries_total{outcome="failed",sink="oncall"} 0.0'
    page = ""
    try:
        deadline = time.monotonic() + 60
        while want not in page and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    page = r.read().decode()
            except OSError:
                continue
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert want in page, err.decode()[-2000:]
    assert 'framewatch_alert_deliveries_total{outcome="failed",sink="chat"} 0.0' in page
    names = {f.name for f in text_string_to_metric_families(page)}
    assert not [n for n in names if n.startswith(("framewatch_ingest_", "framewatch_scoring_"))]
    if PROMTOOL:
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=page, capture_output=True,
                           text=True, timeout=60, check=False)  # fmt: skip
        assert p.returncode == 0 and not p.stdout.strip(), p.stdout + p.stderr


def _literal_args(func: str, index: int) -> set[str]:
    """String literals passed as argument ``index`` to calls of ``func`` in the stages' code."""
    found = set()
    for path in (Path(__file__).resolve().parents[2]).glob("[ais]*/*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or len(node.args) <= index:
                continue
            name = (
                node.func.attr
                if isinstance(node.func, ast.Attribute)
                else getattr(node.func, "id", "")
            )
            arg = node.args[index]
            if name == func and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
    return found


def test_every_dead_letter_reason_in_the_code_is_created_at_start() -> None:
    """A new reason code must join the lists the services initialise, or its first dead letter
    would not raise FramewatchDeadLettersIncreasing."""
    from framewatch.errors import PROCESSING_FAILED
    from ingest.metrics import PUSH_CODES, SOURCE_REASONS

    # deadletter.build(stage, reason, ...) and Failures.dead(message, reason, ...)
    reasons = _literal_args("build", 1) | _literal_args("dead", 1)
    assert {"bad_jpeg", "delivery_failed"} <= reasons  # the scan finds the calls
    assert _literal_args("SourceError", 0) <= set(SOURCE_REASONS)
    assert _literal_args("ImageRejected", 1) <= set(PUSH_CODES)
    initialised = {"rtmp_failed", "bad_jpeg", "unexpected_type", "delivery_failed", "dsa_rejected"}
    initialised.add(PROCESSING_FAILED)  # every stage, with the decode reasons (metrics.py)
    assert reasons - {"ingest", "scoring", "alerts", "streams"} <= initialised
