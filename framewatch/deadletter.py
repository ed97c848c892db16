"""Dead-letter records: what a consumer could not process goes here, with the reason."""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaProducer

from framewatch import records
from framewatch.metrics import DEAD_LETTERS
from framewatch.settings import Settings

log = logging.getLogger(__name__)


def build(
    stage: str,
    reason: str,
    error: str,
    *,
    message: Any = None,
    payload: bytes | None = None,
) -> records.DeadLetter:
    """A DeadLetter for a failed Kafka message (aiokafka ConsumerRecord) or raw payload."""
    key = getattr(message, "key", None)
    return records.DeadLetter(
        stage=stage,
        reason=reason,
        error=error,
        source_topic=getattr(message, "topic", None),
        source_partition=getattr(message, "partition", None),
        source_offset=getattr(message, "offset", None),
        key=key.decode("utf-8", "replace") if isinstance(key, bytes) else key,
        payload=payload if payload is not None else getattr(message, "value", None),
        failed_at=records.now(),
    )


async def send(producer: AIOKafkaProducer, settings: Settings, dead: records.DeadLetter) -> None:
    """Produce the record (awaiting the ack) and count it; callers commit after this returns."""
    DEAD_LETTERS.labels(stage=dead.stage, reason=dead.reason).inc()
    log.warning(
        "dead-lettered: %s",
        dead.error,
        extra={"stage": dead.stage, "reason": dead.reason, "topic": dead.source_topic},
    )
    await producer.send_and_wait(
        settings.topics.name("dead_letters"),
        records.encode(dead),
        key=(dead.key or "").encode() or None,
    )
