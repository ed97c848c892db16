"""Delivery lanes: each sink has its own queue and workers, so a dead sink delays nobody else.

A record fans out into one job per sink. Each sink's :class:`Lane` delivers its jobs with its
own workers; jobs of one key (incident, account) go out in order (a resolve never overtakes its
trigger), and among the keys that are ready, red lines go first. The consumer keeps reading
while a sink retries, and :class:`framewatch.offsets.Offsets` keeps the commit behind the first record with a job
still open: a restart re-reads from there, and the Redis "sent" marks stop a second page to the
sinks that already had it. No page is lost (the commit never passes it) and none is doubled.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Gauge

from framewatch.metrics import stage_registry
from framewatch.tasks import cancel_and_wait

LANE_PENDING = Gauge(
    "framewatch_alerts_lane_pending",
    "deliveries queued or in flight per sink lane",
    ["sink"],
    registry=stage_registry("alerts"),
)
_order = itertools.count()


@dataclass(order=True)
class Job:
    """One delivery to one sink; ``run`` does it (retries, dead letter) and never raises."""

    priority: int  # 0 red line, 1 other
    seq: int
    key: Hashable = field(compare=False)
    run: Callable[[], Awaitable[Any]] = field(compare=False)
    done: asyncio.Future[Any] = field(compare=False)


def job(key: Hashable, red_line: bool, run: Callable[[], Awaitable[Any]]) -> Job:
    return Job(
        0 if red_line else 1, next(_order), key, run, asyncio.get_running_loop().create_future()
    )


class Lane:
    """One sink's jobs: per-key order, red lines first among the ready keys, ``workers`` at once."""

    def __init__(self, sink: str, workers: int) -> None:
        self.sink, self.workers = sink, workers
        self._by_key: dict[Hashable, deque[Job]] = {}
        self._ready: asyncio.PriorityQueue[tuple[int, int, Hashable]] = asyncio.PriorityQueue()
        self._tasks: list[asyncio.Task[None]] = []
        self.pending = 0

    def put(self, j: Job) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._work()) for _ in range(self.workers)]
        q = self._by_key.setdefault(j.key, deque())
        q.append(j)
        self.pending += 1
        LANE_PENDING.labels(sink=self.sink).set(self.pending)
        if len(q) == 1:
            self._ready.put_nowait((j.priority, j.seq, j.key))

    async def _work(self) -> None:
        while True:
            _, _, key = await self._ready.get()
            q = self._by_key[key]
            j = q[0]
            try:
                j.done.set_result(await j.run())
            except Exception as exc:  # run() dead-letters its own failures; this is a bug
                j.done.set_exception(exc)
            q.popleft()
            self.pending -= 1
            LANE_PENDING.labels(sink=self.sink).set(self.pending)
            if q:
                self._ready.put_nowait((q[0].priority, q[0].seq, key))
            else:
                del self._by_key[key]

    async def close(self) -> None:
        await cancel_and_wait(self._tasks, what="delivery lane")
        self._tasks = []
