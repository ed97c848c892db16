"""Issue 19: a worker whose metrics port is taken says so loudly and still decides red lines."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from framewatch import records
from framewatch.records import Decision
from framewatch.settings import Settings
from tests.streams.helpers import scores
from tests.streams.worker import Worker, collect, produce

pytestmark = pytest.mark.integration


async def test_a_worker_started_on_a_taken_metrics_port_still_blocks_red_lines(
    settings: Settings, kafka_topics: dict[str, str], tmp_path: Path
) -> None:
    # what the fault suite hit: an outgoing connection (or an older worker) holds the port
    holder = socket.create_server(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    w = Worker(settings, tmp_path / "faust", tmp_path / "worker.log", metrics_port=port)
    w.start()
    try:
        red = scores(0, "red", cats={"child_safety.csam": 0.9}, account="a1")
        await produce(settings, [(red.stream_id, records.encode(red))])
        got = await collect(settings, "decisions", want=1, worker=w)
        blocks = [d for d in got if isinstance(d, Decision) and d.action == "block"]
        assert [d.stream_id for d in blocks] == ["red"]
        log = (tmp_path / "worker.log").read_text()
        assert f"cannot serve metrics on 127.0.0.1:{port}" in log
        assert "WITHOUT /metrics" in log
    finally:
        w.stop()
        holder.close()
