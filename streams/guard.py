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

And no record is skipped. Faust 0.15 can lose records it is fetching while recovery seeks the
partitions a worker just took over: in tests/streams/test_two_workers.py offsets 44-45 of one
partition never reached the agent, so a block was never decided, and the commit stuck behind
them (at-least-once held, but only a restart would have decided them). ``in_order`` checks that
each partition's records reach the agent with contiguous offsets and seeks back over a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import faust

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


def drain_before_commit(producer: Any) -> None:
    """Make ``producer.buffer.flush()`` (awaited before every commit) return only once every
    buffered message, including the one being handed over, is with the Kafka producer."""
    buf = producer.buffer
    if producer.app.conf.producer_threaded:
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
        while buf.size or in_flight:
            if buf.state != "running":
                raise RuntimeError(f"producer buffer stopped with {buf.size} messages unsent")
            buf.message_sent.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(buf.message_sent.wait(), timeout=1.0)

    buf._send_pending = send_pending
    buf.flush = flush


@dataclass
class Contiguous:
    """Each partition's next expected offset, so that a record that never came is noticed.

    Pure: ``check`` says whether to process a record, and where to seek when records before it
    are missing. A re-delivery (an offset at or below the expected one) is processed: every
    agent is idempotent on replays. After a seek back, a partition that starts again past the
    gap has no records there (retention, compaction): processing goes on from where it starts.
    """

    expected: dict[Any, int] = field(default_factory=dict)
    # tp -> (offset sought back to, highest offset held back since)
    rewinding: dict[Any, tuple[int, int]] = field(default_factory=dict)

    def reset(self) -> None:
        """A rebalance: partitions restart from their committed offsets."""
        self.expected.clear()
        self.rewinding.clear()

    def check(self, tp: Any, offset: int, committed: int | None) -> tuple[bool, int | None]:
        """(process it, seek there first). ``committed``: the partition's committed offset,
        the expected one for its first record since the last rebalance."""
        want = self.expected.get(tp, committed)
        back = self.rewinding.get(tp)
        came_back = back is not None and back[0] == want and offset <= back[1]
        if want is None or offset <= want or came_back:
            self.expected[tp] = offset + 1
            self.rewinding.pop(tp, None)
            return True, None
        if back is not None and back[0] == want:  # still draining what came before the seek
            self.rewinding[tp] = (want, max(back[1], offset))
            return False, None
        self.rewinding[tp] = (want, offset)
        return False, want


async def in_order(app: Any, stream: Any, order: Contiguous) -> AsyncIterator[Any]:
    """``stream.events()`` with every partition's records in contiguous offsets: over a gap,
    seek back to the first missing record and hold back (never ack) what came in its place,
    so the commit cannot pass it before it comes again."""
    consumer = app.consumer
    async for event in stream.events():
        msg = event.message
        go, seek_to = order.check(msg.tp, msg.offset, consumer._committed_offset.get(msg.tp))
        if go:
            yield event
            continue
        consumer._unacked_messages.discard(msg)  # Faust must neither count it nor wait for it
        msg.acked = True
        if seek_to is not None:
            log.warning(
                "records %s..%s of %s never reached the agent; reading again from %s",
                seek_to,
                msg.offset - 1,
                msg.tp,
                seek_to,
            )
            await consumer.seek(msg.tp, seek_to)


def contiguous(app: Any) -> Contiguous:
    """One ``Contiguous`` for the app's agents (partitions are per topic, so they never
    share a key), reset at every assignment."""
    order = Contiguous()

    @app.on_partitions_assigned.connect  # type: ignore[misc]
    async def _reset(*args: Any, **kwargs: Any) -> None:
        order.reset()

    return order
