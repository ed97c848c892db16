"""The buffer between a source's decode thread and the producer, with a named fill strategy.

A live stream that is read slower than it plays must not fall behind real time: its samples
are only worth something while they are fresh, so a full buffer drops its *oldest* sample and
counts it (``DROP_OLDEST``). A file has no real time to keep up with, and every sample of it is
wanted, so the decoder waits for room (``WAIT``). Roboflow inference's ``video_source`` was the
model (``BufferFillingStrategy``).

Control items (an error, the end marker) are never dropped and never wait.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import threading
from typing import Any

from ingest.metrics import FRAMES_DROPPED


class BufferStrategy(enum.StrEnum):
    WAIT = "wait"
    DROP_OLDEST = "drop_oldest"


class FrameBuffer:
    """Bounded; ``put`` from the decode thread, ``await get()`` on the event loop."""

    def __init__(
        self, size: int, strategy: BufferStrategy, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.size = size
        self.strategy = strategy
        self.dropped = 0
        self._items: collections.deque[tuple[bool, Any]] = collections.deque()
        self._samples = 0  # items in the deque that count against `size`
        self._cond = threading.Condition()
        self._loop = loop
        self._ready = asyncio.Event()
        self._closed = False

    def _wake(self) -> None:
        self._loop.call_soon_threadsafe(self._ready.set)

    def put(self, item: Any) -> None:
        """Add a sample; drops the oldest sample or waits for room, by strategy."""
        with self._cond:
            if self.strategy is BufferStrategy.WAIT:
                self._cond.wait_for(lambda: self._samples < self.size or self._closed)
                if self._closed:
                    return
            elif self._samples >= self.size:
                for i, (sample, _) in enumerate(self._items):
                    if sample:
                        del self._items[i]
                        self._samples -= 1
                        self.dropped += 1
                        FRAMES_DROPPED.labels(strategy=self.strategy.value).inc()
                        break
            self._items.append((True, item))
            self._samples += 1
        self._wake()

    def put_control(self, item: Any) -> None:
        """An error or end marker: always kept, never waits."""
        with self._cond:
            self._items.append((False, item))
        self._wake()

    async def get(self) -> Any:
        while True:
            with self._cond:
                if self._items:
                    sample, item = self._items.popleft()
                    if sample:
                        self._samples -= 1
                        self._cond.notify_all()
                    return item
                self._ready.clear()
            await self._ready.wait()

    def close(self) -> None:
        """Release a decoder waiting for room (the consumer is gone)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
