"""The worker exports framewatch_consumer_lag: a backlog shows up on /metrics, then drains."""

from __future__ import annotations

import asyncio
import time
from collections import namedtuple
from collections.abc import Callable
from pathlib import Path

import pytest

from framewatch import metrics, records
from framewatch.kafkaio import create_topics
from framewatch.local import free_port
from framewatch.settings import Settings
from streams.lag import LagExporter, lag_by_partition
from tests.streams.helpers import scores
from tests.streams.worker import Worker, produce

pytestmark = pytest.mark.integration


def test_lost_partitions_leave_the_metrics() -> None:
    tp = namedtuple("tp", "topic partition")
    a, b = tp("x.scores", 0), tp("x.scores", 1)
    assert lag_by_partition([a, b], {a: 10, b: 7}, {a: 4, b: None}) == {
        ("x.scores", 0): 6,
        ("x.scores", 1): 7,  # never committed: all of it is pending
    }
    ex = LagExporter("streams-unit", {"x.scores"})
    ex.export({("x.scores", 0): 6, ("x.scores", 1): 7})
    ex.export({("x.scores", 1): 0})  # a rebalance took partition 0 away
    held = {
        s.labels["partition"]: s.value
        for fam in metrics.CONSUMER_LAG.collect()
        for s in fam.samples
        if s.labels["stage"] == "streams-unit"
    }
    assert held == {"1": 0}


async def test_backlog_shows_as_lag_and_drains(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    # Lag is end - committed. The first commit comes commit_interval_s after the worker starts,
    # so the backlog stays visible for seconds however fast this machine works through it.
    settings = make_settings(metrics={"lag_interval_s": 0.3}, streams={"commit_interval_s": 8.0})
    await create_topics(settings)
    # the backlog is there before the worker starts: nothing of it is committed yet
    n = 1500
    items = [
        (f"s{i % 30}", records.encode(scores(i // 30, f"s{i % 30}", cats={"violence.gore": 0.05})))
        for i in range(n)
    ]
    await produce(settings, items)
    w = Worker(settings, tmp_path / "faust", tmp_path / "worker.log", metrics_port=free_port())
    w.start()
    topic = settings.topics.name("scores")
    seen: list[float] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert w.proc is not None and w.proc.poll() is None, w.log.read_text()[-3000:]
            lag = {p: v for (t, p), v in w.lag().items() if t == topic}
            if len(lag) == settings.topics.partitions:  # one worker holds every partition
                seen.append(sum(lag.values()))
                if seen[-1] == 0 and max(seen) > 0:
                    break
            await asyncio.sleep(0.2)
    finally:
        w.stop()
    assert seen, f"no lag exported; see {w.log}"
    assert max(seen) > 0  # the backlog was visible while the worker worked through it
    assert max(seen) <= n
    assert seen[-1] == 0, f"lag never drained: {seen[-10:]}"
