"""Dead-letter records: what a consumer could not process goes here, with the reason.

A dead letter always fits where it is produced: the failed bytes are cut to
``dead_letters.payload_max_bytes`` and travel with their original size and SHA-256, so a 12 MiB
malformed frame or 3 MiB of garbage never makes a record the broker (or Faust's 1 MB producer)
refuses. See framewatch/failures.py for when a record is dead-lettered.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from aiokafka import AIOKafkaProducer

from framewatch import records
from framewatch.metrics import DEAD_LETTERS
from framewatch.settings import Settings
from framewatch.settings.deadletters import DeadLetterSettings

log = logging.getLogger(__name__)
KEY_MAX_CHARS = 512


def build(
    stage: str,
    reason: str,
    error: str,
    *,
    message: Any = None,
    payload: bytes | None = None,
    limits: DeadLetterSettings | None = None,
) -> records.DeadLetter:
    """A DeadLetter for a failed Kafka message (aiokafka or Faust) or raw payload; cut to
    ``limits`` (the defaults when not given; :func:`send` cuts again to the configured ones)."""
    key = getattr(message, "key", None)
    raw = payload if payload is not None else getattr(message, "value", None)
    if isinstance(key, bytes):
        key = key.decode("utf-8", "replace")
    dead = records.DeadLetter(
        stage=stage,
        reason=reason[:64],
        error=error,
        source_topic=getattr(message, "topic", None),
        source_partition=getattr(message, "partition", None),
        source_offset=getattr(message, "offset", None),
        key=key if isinstance(key, str) else None,
        payload=bytes(raw) if raw is not None else None,
        failed_at=records.now(),
    )
    return fit(dead, limits or DeadLetterSettings())


def fit(dead: records.DeadLetter, limits: DeadLetterSettings) -> records.DeadLetter:
    """The record with payload, error and key cut to the limits; size and digest of the
    original payload kept (idempotent: a record already cut keeps its first size and digest)."""
    update: dict[str, Any] = {}
    data = dead.payload
    if data is not None:
        if dead.payload_size is None:
            update["payload_size"] = len(data)
            update["payload_sha256"] = hashlib.sha256(data).hexdigest()
        if len(data) > limits.payload_max_bytes:
            update["payload"] = data[: limits.payload_max_bytes]
            update["payload_truncated"] = True
    if len(dead.error) > limits.error_max_chars:
        update["error"] = dead.error[: limits.error_max_chars - 12] + " [truncated]"
    if dead.key is not None and len(dead.key) > KEY_MAX_CHARS:
        update["key"] = dead.key[:KEY_MAX_CHARS]
    return dead.model_copy(update=update) if update else dead


def note(dead: records.DeadLetter) -> None:
    """Count and log one dead letter (every path that produces one calls this once)."""
    DEAD_LETTERS.labels(stage=dead.stage, reason=dead.reason).inc()
    log.warning(
        "dead-lettered: %s",
        dead.error,
        extra={"stage": dead.stage, "reason": dead.reason, "topic": dead.source_topic},
    )


async def send(producer: AIOKafkaProducer, settings: Settings, dead: records.DeadLetter) -> None:
    """Fit, count and produce the record (awaiting the ack); callers commit after this returns."""
    dead = fit(dead, settings.dead_letters)
    note(dead)
    await produce(producer, settings, dead)


async def produce(producer: AIOKafkaProducer, settings: Settings, dead: records.DeadLetter) -> None:
    """Produce an already fitted and counted record (framewatch/failures.py does both)."""
    await producer.send_and_wait(
        settings.topics.name("dead_letters"),
        records.encode(fit(dead, settings.dead_letters)),
        key=(dead.key or "").encode() or None,
    )
