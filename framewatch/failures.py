"""Failure handling, decided once for every stage (quixstreams' error callbacks are the model).

Every record a stage consumes is either handled or dead-lettered; nothing is dropped silently
and no single record stops a stage:

- **consumer error** (``on_consumer_error``): the bytes are not a record this consumer reads
  (:class:`RecordDecodeError`: malformed, unknown type or version, a field out of bounds, NaN).
  Dead-lettered with the decoder's reason; the stage goes on.
- **processing error** (``on_processing_error``): the record decodes but handling it raises.
  Dead-lettered as ``processing_failed`` with the exception, logged with its traceback; the
  stage goes on (a poison record must not crash-loop a stage and stall every other stream).
- **producer error** (``on_producer_error``): Kafka refused or failed a send (``fatal``
  exceptions, Kafka's by default). Raised: the stage stops before it commits, and the records
  are re-read after a restart. Losing an output silently would be worse than stopping.

Every consumer calls :meth:`Failures.handle`; only where the dead letter is sent differs (an
aiokafka producer, or the Faust worker's own ``send``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka.errors import KafkaError

from framewatch import deadletter, records
from framewatch.errors import PROCESSING_FAILED, RecordDecodeError
from framewatch.settings.deadletters import DeadLetterSettings

log = logging.getLogger(__name__)
R = TypeVar("R")
T = TypeVar("T")
SendDead = Callable[[records.DeadLetter], Awaitable[Any]]


class Failures:
    """The failure policy of one stage: build, fit, count and send its dead letters."""

    def __init__(
        self,
        stage: str,
        limits: DeadLetterSettings,
        send_dead: SendDead,
        *,
        fatal: tuple[type[BaseException], ...] = (KafkaError,),
    ) -> None:
        self.stage, self.limits, self._send_dead, self.fatal = stage, limits, send_dead, fatal

    async def dead(self, message: Any, reason: str, error: str) -> None:
        """Dead-letter ``message`` (its topic, partition, offset, key and cut value)."""
        rec = deadletter.build(self.stage, reason, error, message=message, limits=self.limits)
        deadletter.note(rec)
        await self._send_dead(rec)

    async def handle(
        self,
        message: Any,
        decode: Callable[[Any], R],
        process: Callable[[R], Awaitable[T]],
    ) -> T | None:
        """Decode ``message.value`` and process it; a consumer or processing error becomes a
        dead letter and None, a producer error (``fatal``) is raised."""
        try:
            rec = decode(message.value)
        except RecordDecodeError as exc:
            await self.dead(message, exc.reason, str(exc))
            return None
        try:
            return await process(rec)
        except (asyncio.CancelledError, *self.fatal):
            raise
        except Exception as exc:
            log.exception(
                "%s: processing a %s record failed; dead-lettered",
                self.stage,
                getattr(rec, "TYPE", type(rec).__name__),
            )
            await self.dead(message, PROCESSING_FAILED, f"{type(exc).__name__}: {exc}")
            return None


def decoder(expect: type[R] | None = None) -> Callable[[Any], R]:
    """``records.decode`` for one record type, as :meth:`Failures.handle` wants it."""
    return lambda value: records.decode(value, expect)  # type: ignore[arg-type]
