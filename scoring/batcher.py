"""Micro-batcher: gathers frames for up to max_wait_ms or max_batch, runs them off the loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """`await submit(item)` returns fn's result for that item; fn gets whole batches.

    fn runs in a thread executor so the event loop (and the Kafka heartbeat) stays free.
    """

    def __init__(
        self,
        fn: Callable[[Sequence[T]], Sequence[R]],
        max_batch: int,
        max_wait_ms: float,
        executor: ThreadPoolExecutor,
    ) -> None:
        self._fn = fn
        self._max_batch = max_batch
        self._max_wait = max_wait_ms / 1000.0
        self._executor = executor
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def submit(self, item: T) -> R:
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, fut))
        return await fut

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = time.monotonic() + self._max_wait
            while len(batch) < self._max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), left))
                except TimeoutError:
                    break
            items = [b[0] for b in batch]
            try:
                results = await loop.run_in_executor(self._executor, self._fn, items)
                self.batches += 1
                for (_, fut), res in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(res)
            except Exception as e:  # the batch's callers each get the error
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
