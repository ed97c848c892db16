"""Writing the audit chain with many links in flight, without weakening its guarantee.

Waiting for each link's acknowledgement before building the next held one worker to one link
per broker round trip, and Faust's one fetch loop for every agent passed that wait on to the
decision agent (records/s in a burst of red lines: tens). :class:`ChainWriter` lets the chain
agent hand up to ``limit`` links to the producer and move on, and keeps the guarantee of
streams/audit.py:

- Order: every link of an audit partition is sent by one agent, in seq order, through Faust's
  producer. aiokafka sends one request per broker at a time and mutes a partition while its
  batch is in flight; a batch it retries goes back to the front of the partition's queue
  before the partition is unmuted, so a partition's links reach the topic in order (a retry
  whose first try was written repeats that batch: exact duplicates). A batch that fails for
  good ends the process (guard.ExitOnSendError) in the callback aiokafka schedules when it
  fails it, before its sender can hand the partition's next batch, so no later link follows a
  lost one.
- The tip: the newest link built moves on as links are sent; the saved head (the ``audit-head``
  table) moves only to links the broker acknowledged, and a link's slot is freed only once a
  saved head covering it is acknowledged too. So at most ``limit`` links are in the topic past
  the saved head: what a replay re-sends after a crash, and what ``audit verify`` accepts.
- Commits: :meth:`settle` (awaited by guard.drain_before_commit before every offset commit and
  on every rebalance) returns once every link handed so far is covered by a saved head whose
  changelog write the broker acknowledged, so the saved head is never behind a committed
  audit-in offset (behind it, a restart would chain the next input onto a stale head: a fork).
- Rebalance: :meth:`reset` drops the in-memory tips; each is read again from the table (after
  Faust recovered it) when its partition's next link is built.

Pure asyncio: the sends and the head saves are callables, tested without a broker.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from streams.audit import Head


class ChainBroken(RuntimeError):
    """A link or a head save failed: nothing may be committed past it (replay on restart)."""


class ChainWriter:
    """Per audit partition: the tip (newest link built), the newest acknowledged head and the
    newest saved one. ``load(partition)``: the saved head (from the table). ``save(partition,
    head)``: write the head to the table; returns a future done when its changelog write is
    acknowledged. ``on_fail``: called once when a link or a save fails (the worker exits
    there, as on any failed send: a restart replays from the last commit)."""

    def __init__(
        self,
        limit: int,
        load: Callable[[int], Head],
        save: Callable[[int, Head], asyncio.Future[Any]],
        on_fail: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._load, self._save_fn, self._on_fail = load, save, on_fail
        self._room = asyncio.Semaphore(limit)
        self._tips: dict[int, Head] = {}
        self._acked: dict[int, Head] = {}
        self._saving: set[int] = set()
        self._unsaved: dict[int, deque[int]] = {}  # seqs sent, no saved head covers them yet
        self._changed = asyncio.Event()
        self.failed: BaseException | None = None

    def tip(self, partition: int) -> Head:
        """The head the partition's next link chains onto."""
        tip = self._tips.get(partition)
        if tip is None:
            tip = self._tips[partition] = self._load(partition)
        return tip

    @property
    def in_flight(self) -> int:
        """Links sent and not yet covered by a saved head."""
        return sum(len(q) for q in self._unsaved.values())

    async def write(
        self, partition: int, head: Head, send: Callable[[], Awaitable[asyncio.Future[Any]]]
    ) -> None:
        """Hand the link that makes ``head`` the tip to the producer (``send`` returns the
        future of its acknowledgement); waits first while ``limit`` links are in flight."""
        self._check()
        await self._room.acquire()
        try:
            self._check()
            ack = await send()
        except BaseException:
            self._room.release()
            raise
        self._tips[partition] = head
        self._unsaved.setdefault(partition, deque()).append(head.seq)
        ack.add_done_callback(partial(self._on_ack, partition, head))

    async def settle(self) -> None:
        """Return once every link sent so far is covered by a saved head (raise ChainBroken
        if a link or a save failed)."""
        target = {p: q[-1] for p, q in self._unsaved.items() if q}
        while True:
            self._check()
            if all(not self._unsaved[p] or self._unsaved[p][0] > s for p, s in target.items()):
                return
            changed = self._changed
            await changed.wait()

    def reset(self) -> None:
        """Partitions were (re)assigned: read each tip from the table again."""
        self._tips.clear()

    def _check(self) -> None:
        if self.failed is not None:
            raise ChainBroken(f"an audit link or head save failed: {self.failed!r}")

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _fail(self, exc: BaseException) -> None:
        first = self.failed is None
        if first:
            self.failed = exc
        self._notify()
        if first and self._on_fail is not None:
            self._on_fail(exc)

    def _on_ack(self, partition: int, head: Head, ack: asyncio.Future[Any]) -> None:
        if ack.cancelled() or ack.exception() is not None:
            self._fail(ack.exception() or asyncio.CancelledError())
            return
        acked = self._acked.get(partition)
        if acked is None or head.seq > acked.seq:
            self._acked[partition] = head
        if partition not in self._saving:
            self._save(partition)

    def _save(self, partition: int) -> None:
        """Save the newest acknowledged head (one save in flight per partition; the heads
        acknowledged meanwhile are covered by the next one)."""
        head = self._acked[partition]
        self._saving.add(partition)
        try:
            done = self._save_fn(partition, head)
        except Exception as exc:
            self._saving.discard(partition)
            self._fail(exc)
            return
        done.add_done_callback(partial(self._on_saved, partition, head))

    def _on_saved(self, partition: int, head: Head, done: asyncio.Future[Any]) -> None:
        self._saving.discard(partition)
        if done.cancelled() or done.exception() is not None:
            self._fail(done.exception() or asyncio.CancelledError())
            return
        q = self._unsaved.get(partition)
        while q and q[0] <= head.seq:
            q.popleft()
            self._room.release()
        if self._acked[partition].seq > head.seq:
            self._save(partition)
        self._notify()
