"""Fixtures for console tests on the real pipeline: sink receivers, a streams worker and a
console process with reviewer alice of tenant-a (password ``helpers.PASSWORD``). A test module
that uses them defines its own ``settings`` (its routing file)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from framewatch.local import free_port
from framewatch.settings import Settings
from tests.alerts.conftest import SinkServer, start_sink_server
from tests.console.helpers import PASSWORD, ConsoleProc, cli
from tests.streams.worker import Worker


@pytest.fixture
async def sinks() -> AsyncIterator[SinkServer]:
    srv, runner = await start_sink_server()
    yield srv
    await runner.cleanup()


@pytest.fixture
def worker(settings: Settings, kafka_topics: dict[str, str], tmp_path: Path) -> Iterator[Worker]:
    w = Worker(settings, tmp_path / "faust", tmp_path / "worker.log")
    w.start()
    yield w
    w.stop()
    print((tmp_path / "worker.log").read_text()[-3000:])


@pytest.fixture
def console(settings: Settings, worker: Worker, tmp_path: Path) -> Iterator[ConsoleProc]:
    cli(settings, worker.data_dir, "console", "user", "add", "alice", "--tenant", "tenant-a",
        "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    c = ConsoleProc(settings, worker.data_dir, free_port(), tmp_path / "console.log")
    yield c
    c.stop()
    print((tmp_path / "console.log").read_text()[-3000:])
