"""`framewatch up`: plan, topic creation on the real broker, every service started, clean Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from framewatch.services import services
from framewatch.settings import Settings


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEWATCH_")}
    env.update(extra)
    return env


def _up(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "framewatch.cli", "up", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dry_run_lists_every_service_with_its_metrics_url(tmp_path: Path) -> None:
    out = _up(_env(FRAMEWATCH_LOCAL__STATE_DIR=str(tmp_path)), "--dry-run", "--json")
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["local"] is True  # nothing configured: up would start the local stack
    assert [s["name"] for s in plan["services"]] == [s.name for s in services()]
    assert [s["metrics"] for s in plan["services"]] == [
        f"http://127.0.0.1:{p}/metrics" for p in (9101, 9102, 9103, 9104, 9105, 9106)
    ]
    scorer = plan["services"][1]
    assert scorer["argv"][1:] == ["-P", "-m", "framewatch.cli", "score"]


def test_configured_broker_and_redis_mean_no_local_stack(tmp_path: Path) -> None:
    env = _env(FRAMEWATCH_KAFKA_BOOTSTRAP="kafka:9092", FRAMEWATCH_REDIS_URL="redis://redis:6379/0")
    plan = json.loads(_up(env, "--dry-run", "--json", "--only", "scoring,alerts").stdout)
    assert plan["local"] is False
    assert [s["name"] for s in plan["services"]] == ["scoring", "alerts"]


def test_unknown_service_in_only_is_a_clear_error() -> None:
    out = _up(_env(), "--only", "scoring,gpu", "--dry-run")
    assert out.returncode == 1
    assert "unknown service(s) gpu" in out.stderr and "scoring" in out.stderr


@pytest.mark.integration
def test_up_creates_topics_runs_every_service_and_ctrl_c_stops_cleanly(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    prefix = f"t-up-{uuid.uuid4().hex[:6]}."
    env = _env(
        FRAMEWATCH_KAFKA_BOOTSTRAP=kafka_bootstrap,
        FRAMEWATCH_REDIS_URL=redis_url,
        FRAMEWATCH_TOPICS__PREFIX=prefix,
        FRAMEWATCH_TOPICS__PARTITIONS="2",
        FRAMEWATCH_TOPICS__ACCOUNT_PARTITIONS="2",
        FRAMEWATCH_METRICS__ENABLED="false",
        # once the stages are merged they really start: keep them off shared ports
        FRAMEWATCH_INGEST__HTTP_PORT="0",
        FRAMEWATCH_SCORING__HTTP_PORT="0",
        FRAMEWATCH_ALERTS__HTTP_PORT="0",
        FRAMEWATCH_CONSOLE__PORT="0",
        FRAMEWATCH_LOCAL__STATE_DIR=str(tmp_path / "local"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "framewatch.cli", "up", "--grace", "5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 40
    started = set()
    while len(started) < len(services()) and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        for s in services():
            if f"started {s.name} (pid" in line:
                started.add(s.name)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=30)
    log = "".join(seen) + rest
    assert started == {s.name for s in services()}, log
    assert proc.returncode == 0, log
    n = len(Settings().topics.all())  # every topic of the settings, created by `up`
    assert f"topics ready: {n} ({n} new)" in log
    assert "all services stopped" in log
    assert "stopping the local kafka" not in log  # it used the configured broker

    from framewatch.kafkaio import create_topics

    settings = Settings(kafka_bootstrap=kafka_bootstrap, topics={"prefix": prefix})
    again = asyncio.run(create_topics(settings))
    assert set(again.values()) == {"exists"}


@pytest.mark.integration
@pytest.mark.slow
def test_up_starts_the_local_stack_when_nothing_is_configured_and_stops_it_after(
    tmp_path: Path,
) -> None:
    from framewatch.local import free_port, port_open

    kafka_port, redis_port = free_port(), free_port()
    env = _env(
        FRAMEWATCH_LOCAL__STATE_DIR=str(tmp_path / "local"),
        FRAMEWATCH_LOCAL__KAFKA_PORT=str(kafka_port),
        FRAMEWATCH_LOCAL__CONTROLLER_PORT=str(free_port()),
        FRAMEWATCH_LOCAL__REDIS_PORT=str(redis_port),
        FRAMEWATCH_METRICS__ENABLED="false",
        FRAMEWATCH_ALERTS__HTTP_PORT="0",
        FRAMEWATCH_TOPICS__PARTITIONS="1",
        FRAMEWATCH_TOPICS__ACCOUNT_PARTITIONS="1",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "framewatch.cli", "up", "--only", "alerts", "--grace", "5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if "started alerts (pid" in line:
                break
        assert port_open(kafka_port) and port_open(redis_port), "".join(seen)
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    log = "".join(seen) + rest
    assert proc.returncode == 0, log
    n = len(Settings().topics.all())
    assert "starting kafka" in log and f"topics ready: {n} ({n} new)" in log
    assert "stopping the local kafka and redis that up started" in log
    assert not port_open(kafka_port) and not port_open(redis_port)
