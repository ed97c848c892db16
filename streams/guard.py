"""No offset is committed past a record the worker has not safely produced (at-least-once).

Faust commits an offset after flushing the producer, with two gaps this module closes:

- A send that fails for good (after the producer's retries) is only logged: the flush returns,
  the commit goes ahead, and the decision or table change is gone while the scores record that
  made it counts as done. ``ExitOnSendError`` sees every failed send (outputs and changelog
  writes alike) and ends the process at once: the commit waits on a hop to the consumer
  thread, so it cannot go out first. A restarted worker replays from the last commit and
  produces the same records (ids are deterministic).
- Table changelog writes wait in Faust's producer buffer, and its flush gives up after 0.1 s
  without progress and ignores the message being handed over. Under load a commit then passes
  changelog writes still in the buffer, and a kill loses them: we saw a strike vanish from the
  ledger in tests/streams/test_two_workers.py. ``drain_before_commit`` makes the flush wait.
- Stream states are written to their changelog once per commit, not once per record
  (:class:`DeferredWrites`): the table's memory has every change at once, and the commit's
  flush sends each changed row's value as it then is before it drains the producer, so no
  commit passes a state change it covers.
- Work an agent starts for a record and does not wait for (evidence pinning, on a thread off
  the decision path; audit links in flight, streams/audit_writer.py) must end, and its outputs
  be buffered, before that record's offset is committed: ``drain_before_commit`` also waits
  for the :class:`Background` and the ``settle`` it is given.

And no record is skipped. Faust 0.15 can lose records it is fetching while recovery seeks the
partitions a worker just took over: in tests/streams/test_two_workers.py offsets 44-45 of one
partition never reached the agent, so a block was never decided, and the commit stuck behind
them (at-least-once held, but only a restart would have decided them). Seeking Faust's consumer
back did not help: its fetch loop raced the seek and dropped the records again. ``in_order``
checks that each partition's records reach the agent with contiguous offsets and reads a gap
from the broker itself, in order, before the record that came after it. A gap at a partition's
end has no record after it: there (4 runs in 18 of the same test lost the last records of a
partition, and with them their blocks) ``watch_stalls`` hands an agent that has waited
``streams.stall_s`` for its next record the records its partitions hold past the last one it
got, read from the broker and delivered through Faust's own path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka import TopicPartition
from faust.types.tuples import ConsumerMessage

from framewatch import kafkaio
from framewatch.settings import Settings

log = logging.getLogger(__name__)
EXIT_SEND_FAILED = 70  # EX_SOFTWARE: a supervisor should restart the worker


class ExitOnSendError(faust.Sensor):
    """A Faust sensor: on any failed send, log why and exit without committing."""

    def __init__(self, stage: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage = stage

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        log.critical(
            "%s: could not produce a record (%s: %s); exiting before the offset commit so it is "
            "replayed on restart. Check the broker and the topic's max.message.bytes.",
            self.stage,
            type(exc).__name__,
            exc,
        )
        logging.shutdown()
        os._exit(EXIT_SEND_FAILED)


class Background:
    """Tasks started for consumed records, awaited before the next offset commit (at most
    ``limit`` at once: starting one more waits, so a slow disk slows the agent, not memory)."""

    def __init__(self, limit: int) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._room = asyncio.Semaphore(limit)

    async def start(self, work: Coroutine[Any, Any, Any]) -> None:
        await self._room.acquire()
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._room.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("background work failed: %r", task.exception())

    async def wait(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


class DeferredWrites:
    """Table rows changed since the last commit, written to their changelogs at the commit.

    A stream's state changes on most frames of a stream going bad, and each change was one
    changelog record (~1.8 KB of JSON) through the producer: now a row changed many times
    between two commits costs one. ``set`` updates the table's memory at once, so the next
    record reads the new state; ``flush`` (run by :func:`drain_before_commit` after Faust has
    chosen the offsets to commit and before it drains the producer) sends each row's value as
    it is then, so the commit never passes a change it covers, and a row another agent wrote
    meanwhile (a review) is sent with that write in it. Rows of partitions this worker gives
    away are dropped (``revoked``): Faust's revoke has already flushed and committed, and what
    came later is replayed by the new owner.
    """

    def __init__(self) -> None:
        self._rows: dict[tuple[int, Any], tuple[Any, Any, Any]] = {}

    def set(self, table: Any, tp: Any, key: Any, value: Any) -> None:
        """Set ``table[key]`` in memory now and in its changelog at the next commit; ``tp`` is
        the partition of the record that changed it (a table's changelog partition is its
        source record's)."""
        table.data[key] = value
        self._rows[(id(table), key)] = (table, tp, key)

    def flush(self) -> int:
        """Hand every changed row to the producer (its buffer, as ``table[key] = value``
        would); returns how many rows."""
        rows, self._rows = self._rows, {}
        for table, tp, key in rows.values():
            if key in table.data:
                table.send_changelog(tp.partition, key, table.data[key])
        return len(rows)

    def revoked(self, tps: Any) -> None:
        """Forget the rows of partitions given away."""
        gone = set(tps)
        self._rows = {k: row for k, row in self._rows.items() if row[1] not in gone}


def deferred_writes(app: Any) -> DeferredWrites:
    """One ``DeferredWrites`` for the app, forgetting the rows of revoked partitions."""
    writes = DeferredWrites()

    @app.on_partitions_revoked.connect  # type: ignore[misc]
    async def _revoked(*args: Any, **kwargs: Any) -> None:
        writes.revoked(args[-1] if args else kwargs.get("revoked", ()))

    return writes


def drain_before_commit(
    producer: Any,
    background: Background | None = None,
    settle: Callable[[], Awaitable[None]] | None = None,
    writes: DeferredWrites | None = None,
) -> None:
    """Make ``producer.buffer.flush()`` (awaited before every commit and on every rebalance)
    return only once the ``background`` work has ended, ``settle`` has returned (the audit
    chain: every link sent is acknowledged and its head saved), the deferred table ``writes``
    are sent and every buffered message, including the one being handed over, is with the
    Kafka producer."""
    buf = producer.buffer
    if producer.app.conf.producer_threaded:
        if background is not None or settle is not None or writes is not None:
            raise RuntimeError("drain_before_commit needs Faust's default (unthreaded) producer")
        return  # a different buffer; not used by this worker
    orig_send = buf._send_pending
    in_flight = 0

    async def send_pending(fut: Any) -> None:
        nonlocal in_flight
        in_flight += 1
        try:
            await orig_send(fut)
        finally:
            in_flight -= 1

    async def flush() -> None:
        if background is not None:
            await background.wait()  # its sends land in the buffer drained below
        if settle is not None:
            await settle()  # so do its table writes
        if writes is not None:
            writes.flush()  # into the buffer, drained below
        while buf.size or in_flight:
            if buf.state != "running":
                raise RuntimeError(f"producer buffer stopped with {buf.size} messages unsent")
            buf.message_sent.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await buf.message_sent.wait()

    buf._send_pending = send_pending
    buf.flush = flush


@dataclass
class Contiguous:
    """Each partition's next expected offset, so that a record that never came is noticed.

    Pure: ``check`` returns the offsets missing before a record (an empty range when there are
    none). A re-delivery (an offset below the expected one) is processed again: every agent is
    idempotent on replays.
    """

    expected: dict[Any, int] = field(default_factory=dict)
    waiting: dict[str, float] = field(default_factory=dict)  # topic -> its agent idle since

    def reset(self) -> None:
        """A rebalance: partitions restart from their committed offsets."""
        self.expected.clear()

    def rewait(self, now: float) -> None:
        """A rebalance ended: Faust has sought every partition to its commit and fetches
        again, so an agent's wait counts from now (not: its backlog read twice at once)."""
        for topic in self.waiting:
            self.waiting[topic] = now

    def stalled(
        self,
        assigned: Iterable[Any],
        highwater: Callable[[Any], int | None],
        committed: Mapping[Any, int | None],
        now: float,
        stall_s: float,
        most: int = 1000,
    ) -> dict[Any, range]:
        """The records to hand over: of each partition in ``assigned`` whose agent has waited
        ``stall_s`` or more for its next record while the partition ends (``highwater``) past
        the next offset expected (the one after the last record the agent got, else the
        ``committed`` one; never committed: the start), the offsets from there to its end, at
        most ``most`` of them (the rest at the next check). One agent reads each topic
        (``waiting`` is by topic)."""
        out: dict[Any, range] = {}
        for tp in assigned:
            since = self.waiting.get(tp.topic)
            if since is None or now - since < stall_s:
                continue  # the agent is busy with a record, or only just asked for one
            end = highwater(tp)
            want = max(self.expected.get(tp, committed.get(tp)) or 0, 0)
            if end is not None and end > want:
                out[tp] = range(want, min(end, want + most))
        return out

    def check(self, tp: Any, offset: int, committed: int | None) -> range:
        """The offsets missing before ``offset``. ``committed``: the partition's committed
        offset, the expected one for its first record since the last rebalance."""
        want = self.expected.get(tp, committed)
        self.expected[tp] = max(offset + 1, want or 0)
        if want is None or offset <= want:
            return range(0)
        return range(want, offset)


@dataclass
class Recovered:
    """A record read past Faust, shaped like the event the agents read."""

    message: Any
    key: Any
    value: Any


def as_message(r: Any, tp: Any, generation_id: int | None = None) -> ConsumerMessage:
    """A record read with our own consumer (aiokafka), as Faust's fetcher makes it."""
    return ConsumerMessage(
        r.topic, r.partition, r.offset, r.timestamp / 1000.0, r.timestamp_type, r.headers,
        r.key, r.value, None, tp=tp, generation_id=generation_id,
    )  # fmt: skip


async def read_range(settings: Settings, tp: Any, offsets: range) -> list[Any]:
    """The records of ``offsets`` in one partition, read with a consumer of our own (no group,
    nothing committed). Offsets that no longer exist (retention, compaction) are not there."""
    cons = kafkaio.consumer(settings, group_id=None)  # type: ignore[arg-type]
    await cons.start()
    try:
        part = TopicPartition(tp.topic, tp.partition)
        cons.assign([part])
        cons.seek(part, offsets.start)
        out: list[Any] = []
        while True:
            batch = await cons.getmany(part, timeout_ms=1000, max_records=len(offsets))
            recs = batch.get(part, [])
            if not recs:
                return out  # nothing more there (the end, or offsets that are gone)
            for r in recs:
                if r.offset >= offsets.stop:
                    return out
                out.append(r)
    finally:
        await cons.stop()


async def in_order(
    app: Any, settings: Settings, stream: Any, order: Contiguous
) -> AsyncIterator[Any]:
    """``stream.events()``, and before any record whose partition skipped offsets, the skipped
    records, read directly from the broker and acked once handled, so the commit moves on."""
    consumer = app.consumer
    channel = getattr(stream, "channel", None)
    topics = list(getattr(channel, "topics", ()))
    events = stream.events().__aiter__()
    while True:
        idle = time.monotonic()
        for t in topics:
            order.waiting[t] = idle
        try:
            event = await events.__anext__()
        except StopAsyncIteration:
            return
        finally:
            for t in topics:
                order.waiting.pop(t, None)
        msg = event.message
        missing = order.check(msg.tp, msg.offset, consumer._committed_offset.get(msg.tp))
        if missing:
            log.warning(
                "records %s..%s of %s never reached the agent; reading them from the broker",
                missing.start,
                missing.stop - 1,
                msg.tp,
            )
            for r in await read_range(settings, msg.tp, missing):
                m = as_message(r, msg.tp)
                yield Recovered(m, r.key, r.value)
                consumer.ack(m)
        yield event


def contiguous(app: Any) -> Contiguous:
    """One ``Contiguous`` for the app's agents (partitions are per topic, so they never
    share a key), reset at every assignment."""
    order = Contiguous()

    @app.on_partitions_assigned.connect  # type: ignore[misc]
    async def _reset(*args: Any, **kwargs: Any) -> None:
        order.reset()

    @app.on_rebalance_complete.connect  # type: ignore[misc]
    async def _rewait(*args: Any, **kwargs: Any) -> None:
        order.rewait(time.monotonic())

    return order


def watch_stalls(app: Any, settings: Settings, order: Contiguous) -> None:
    """Every ``streams.stall_s``: hand each agent that waited that long the records its
    partitions hold past the last one it got (:meth:`Contiguous.stalled`), read from the broker
    and delivered as Faust delivers a fetched record (its conductor: decoded, tracked, acked by
    the agent). Not while a rebalance runs: Faust then seeks every partition back itself. A
    record Faust was only slow to deliver comes twice; every agent is idempotent on replays."""
    stall_s = settings.streams.stall_s

    @app.timer(stall_s)  # type: ignore[misc]
    async def _hand_over_stalled() -> None:
        consumer = app.consumer
        if app.rebalancing or not consumer.flow_active:
            return
        gen = app.consumer_generation_id
        stalled = order.stalled(
            consumer.assignment(),
            consumer.highwater,
            consumer._committed_offset,
            time.monotonic(),
            stall_s,
        )
        for tp, offsets in stalled.items():
            log.warning(
                "records %s..%s of %s were never handed to the agent, which has waited %.0f s "
                "for them; reading them from the broker",
                offsets.start,
                offsets.stop - 1,
                tp,
                stall_s,
            )
            for r in await read_range(settings, tp, offsets):
                if app.rebalancing or app.consumer_generation_id != gen:
                    return  # the partitions are sought back to their commits anyway
                await app.topics.on_message(as_message(r, tp, gen))
