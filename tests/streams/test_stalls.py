"""Records Faust fetched and never handed to the agent, at a partition's end (no later record
shows the gap), still reach it: the worker reads them from the broker once its agent has
waited ``streams.stall_s`` for them (streams/guard.watch_stalls)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from framewatch import records
from framewatch.kafkaio import create_topics
from framewatch.local import free_port
from framewatch.records import Decision
from framewatch.settings import Settings
from tests.streams.helpers import scores
from tests.streams.worker import Worker, collect, produce

pytestmark = pytest.mark.integration


def red(stream: str) -> tuple[str, bytes]:
    rec = scores(0, stream, cats={"child_safety.csam": 0.95})
    return stream, records.encode(rec)


async def test_records_faust_dropped_at_a_partitions_end_are_still_decided(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(
        topics={"partitions": 1, "account_partitions": 1},
        streams={"stall_s": 1.0},
        metrics={"lag_interval_s": 0.5},
    )
    await create_topics(settings)
    w = Worker(
        settings,
        tmp_path / "w",
        tmp_path / "w.log",
        metrics_port=free_port(),
        module="tests.streams.lossy_worker",
        env={"LOSSY_OFFSETS": "1,2"},  # Faust drops the 2nd and 3rd scores records
    )
    w.start()
    try:
        await produce(settings, [red("a")])
        first = await collect(settings, "decisions", want=1, timeout=60, settle=0.1, worker=w)
        assert [d.stream_id for d in first if isinstance(d, Decision)] == ["a"]

        # the last two records of the partition: fetched, dropped, nothing after them
        await produce(settings, [red("b"), red("c")])
        out = await collect(settings, "decisions", want=3, timeout=30, settle=0.5, worker=w)
        blocked = {d.stream_id for d in out if isinstance(d, Decision) and d.action == "block"}
        log = w.log.read_text()
        assert "dropped" in log and "@2" in log, log[-3000:]  # the records were really lost
        assert blocked == {"a", "b", "c"}, log[-3000:]
        assert "were never handed to the agent" in log

        # and the commit moves past them: nothing is left to replay
        scores_topic = settings.topics.name("scores")
        end = time.monotonic() + 20
        while time.monotonic() < end:
            lag = {p: v for (t, p), v in w.lag().items() if t == scores_topic}
            if lag == {0: 0.0}:
                break
            await asyncio.sleep(0.3)
        assert lag == {0: 0.0}
    finally:
        w.stop()
