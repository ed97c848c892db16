"""Fixtures of the streams tests that run the real worker against the session's broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from framewatch.settings import Settings
from tests.streams.worker import Worker


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    # a killed worker's partitions move after the session timeout: keep restarts quick
    return make_settings(streams={"session_timeout_s": 8})


@pytest.fixture
def worker(settings: Settings, kafka_topics: dict[str, str], tmp_path: Path) -> Iterator[Worker]:
    """One worker (no /metrics) for the test; its log's tail is printed for failures."""
    w = Worker(settings, tmp_path / "faust", tmp_path / "worker.log")
    w.start()
    yield w
    w.stop()
    print((tmp_path / "worker.log").read_text()[-3000:])
