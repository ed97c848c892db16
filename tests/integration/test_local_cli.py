"""`framewatch local start|status|stop` runs and stops real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from framewatch.local import free_port, pid_alive

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _fw(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "framewatch.cli", *args], env=env,
                          capture_output=True, text=True, timeout=180)  # fmt: skip


def test_local_start_status_stop(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEWATCH_")}
    env.update({
        "FRAMEWATCH_LOCAL__STATE_DIR": str(tmp_path / "state"),
        "FRAMEWATCH_LOCAL__KAFKA_PORT": str(free_port()),
        "FRAMEWATCH_LOCAL__CONTROLLER_PORT": str(free_port()),
        "FRAMEWATCH_LOCAL__REDIS_PORT": str(free_port()),
    })  # fmt: skip
    started = _fw(env, "local", "start", "--json")
    try:
        assert started.returncode == 0, started.stderr
        st = json.loads(started.stdout)
        assert st["kafka"]["up"] and st["redis"]["up"]
        again = _fw(env, "local", "start", "--json")  # idempotent: same processes
        assert json.loads(again.stdout)["kafka"]["pid"] == st["kafka"]["pid"]
        status = _fw(env, "local", "status")
        assert (
            status.returncode == 0 and "kafka  up" in status.stdout and "redis  up" in status.stdout
        )
        env["FRAMEWATCH_KAFKA_BOOTSTRAP"] = st["kafka"]["bootstrap"]
        topics = _fw(env, "topics", "create", "--json")
        assert topics.returncode == 0, topics.stderr
        assert json.loads(topics.stdout)["frames"] == "created"
    finally:
        stopped = _fw(env, "local", "stop", "--json")
    assert stopped.returncode == 0
    assert not pid_alive(st["kafka"]["pid"]) and not pid_alive(st["redis"]["pid"])
    down = _fw(env, "local", "status")
    assert down.returncode == 3 and "down" in down.stdout
