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
- Work an agent starts for a record and does not wait for (evidence pinning, on a thread off
  the decision path) must end, and its outputs be buffered, before that record's offset is
  committed: ``drain_before_commit`` also waits for the :class:`Background` it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Coroutine
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


def drain_before_commit(producer: Any, background: Background | None = None) -> None:
    """Make ``producer.buffer.flush()`` (awaited before every commit) return only once the
    ``background`` work has ended and every buffered message, including the one being handed
    over, is with the Kafka producer."""
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
        if background is not None:
            await background.wait()  # its sends land in the buffer drained below
        while buf.size or in_flight:
            if buf.state != "running":
                raise RuntimeError(f"producer buffer stopped with {buf.size} messages unsent")
            buf.message_sent.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(buf.message_sent.wait(), timeout=1.0)

    buf._send_pending = send_pending
    buf.flush = flush
