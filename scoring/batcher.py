"""Micro-batcher: gathers frames for up to max_wait_ms or max_batch, runs them off the loop.
Urgent items (the scorer's: frames of known-bad media) go into the next batch ahead of the queue."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

from framewatch.tasks import cancel_and_wait

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """`await submit(item)` returns fn's result for that item; fn gets whole batches.

    fn runs in a thread executor so the event loop (and the Kafka heartbeat) stays free. Up to
    `concurrency` batches run at once (one per executor thread): on a CPU, two single-threaded
    batches side by side cost less CPU a frame than one batch on two intra-op threads. A batch
    forms only once a slot is free, so a backlog makes batches fuller, not more of them.
    Urgent items go first, in a batch of their own that waits for nothing: on a CPU a frame
    costs the same in a batch of one as of four, and three queued frames beside it would
    make it wait for theirs. When every slot is taken, up to `urgent_slots` urgent batches
    more run beside them (the executor needs a thread for each): a batch of four takes most
    of a second on a loaded CPU, and an urgent frame would otherwise wait for one to end.
    """

    def __init__(
        self,
        fn: Callable[[Sequence[T]], Sequence[R]],
        max_batch: int,
        max_wait_ms: float,
        executor: ThreadPoolExecutor,
        concurrency: int = 1,
        urgent_slots: int = 0,
    ) -> None:
        self._fn = fn
        self._max_batch = max_batch
        self._max_wait = max_wait_ms / 1000.0
        self._executor = executor
        self._queue: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._urgent: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._changed = asyncio.Event()  # an item queued or a slot freed
        self._task: asyncio.Task[None] | None = None
        self._free = {"any": concurrency, "urgent": urgent_slots}  # slots not running a batch
        self._running: set[asyncio.Task[None]] = set()
        self.batches = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        await cancel_and_wait([self._task, *self._running], what="batch")

    async def submit(self, item: T, urgent: bool = False) -> R:
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._queue).append((item, fut))
        self._changed.set()
        return await fut

    def promote(self, pick: Callable[[T], bool]) -> int:
        """Make every queued item ``pick`` selects urgent, in its order; returns how many."""
        moved = [entry for entry in self._queue if pick(entry[0])]
        if moved:
            self._queue = deque(entry for entry in self._queue if not pick(entry[0]))
            self._urgent.extend(moved)
            self._changed.set()  # an urgent slot may now take them
        return len(moved)

    def waiting(self) -> int:
        return len(self._queue) + len(self._urgent)

    def _slot(self) -> str | None:
        """The slot the next batch runs in: any free one, else an urgent one for urgent items."""
        if self._free["any"] and self.waiting():
            return "any"
        if self._free["urgent"] and self._urgent:
            return "urgent"
        return None

    async def _until_changed(self, deadline: float | None) -> bool:
        """Until an item is queued or a slot freed (True), or the loop-time ``deadline``
        passes (False)."""
        self._changed.clear()
        try:
            async with asyncio.timeout_at(deadline):
                await self._changed.wait()
        except TimeoutError:
            return False
        return True

    def _take(self) -> tuple[T, asyncio.Future[R]]:
        return (self._urgent or self._queue).popleft()

    async def _loop(self) -> None:
        while True:
            slot = self._slot()
            if slot is None:
                await self._until_changed(None)
                continue
            self._free[slot] -= 1
            urgent = bool(self._urgent)
            batch = [self._take()]
            deadline = asyncio.get_running_loop().time() + self._max_wait
            while len(batch) < self._max_batch:
                if urgent:  # on its own: queued frames would make it wait for theirs
                    if not self._urgent:
                        break
                elif not await self._more(deadline):
                    break
                batch.append(self._take())
            task = asyncio.create_task(self._run(batch, slot))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _more(self, deadline: float) -> bool:
        """Wait until an item is queued (True) or the batch's deadline passes (False)."""
        while not self.waiting():
            if not await self._until_changed(deadline):
                return False
        return True

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]], slot: str) -> None:
        items = [b[0] for b in batch]
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._fn, items
            )
            self.batches += 1
            for (_, fut), res in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(res)
        except Exception as e:  # the batch's callers each get the error
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(e)
        finally:
            self._free[slot] += 1
            self._changed.set()
