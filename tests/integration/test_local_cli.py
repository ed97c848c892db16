"""`framewatch local start|status|stop` runs and stops real processes."""

from __future__ import annotations

import json
import os
import socket
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


def test_local_start_refuses_a_taken_port_but_a_throwaway_stack_moves(tmp_path: Path) -> None:
    """Issue 19: a Redis already on the laptop's port stops `local start`, not the demo."""
    from framewatch.local import LocalStack
    from framewatch.settings import load_settings

    holder = socket.create_server(("127.0.0.1", 0))  # "someone's Redis"
    taken = holder.getsockname()[1]
    s = load_settings(local={"state_dir": tmp_path / "state", "redis_port": taken,
                             "kafka_port": free_port(), "controller_port": free_port()})  # fmt: skip
    stack = LocalStack(s)
    said: list[str] = []
    try:
        result = _fw({**{k: v for k, v in os.environ.items() if not k.startswith("FRAMEWATCH_")},
                      "FRAMEWATCH_LOCAL__STATE_DIR": str(tmp_path / "cli"),
                      "FRAMEWATCH_LOCAL__REDIS_PORT": str(taken)}, "local", "start")  # fmt: skip
        assert result.returncode != 0 and f"port {taken} is taken" in result.stderr
        st = stack.start(progress=said.append, free_if_taken=True)
        assert st["redis"]["up"] and st["kafka"]["up"]
        assert st["redis"]["address"] != f"127.0.0.1:{taken}"
        assert any(f"port {taken} is taken" in m and "using" in m for m in said)
    finally:
        stack.stop()
        holder.close()
