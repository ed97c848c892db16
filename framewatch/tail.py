"""`framewatch tail TOPIC`: follow a topic and print its records for people or machines."""

from __future__ import annotations

import asyncio
import json
import time

from framewatch import records
from framewatch.errors import RecordDecodeError, SettingsError
from framewatch.kafkaio import consumer
from framewatch.settings import TOPIC_KEYS, Settings


def summary(rec: records._Record) -> str:
    """One readable line per record."""
    t = time.strftime("%H:%M:%S")
    match rec:
        case records.Decision():
            why = ", ".join(f"{r.category} {r.score:.2f}>{r.threshold:.2f}" for r in rec.reasons)
            flag = " RED-LINE" if rec.red_line else ""
            return f"{t} {rec.action.upper():<6}{flag} tenant={rec.tenant} stream={rec.stream_id} account={rec.account_id} {why}"
        case records.Enforcement():
            return f"{t} {rec.action} tenant={rec.tenant} account={rec.account_id} step={rec.ladder_step} strikes={rec.strike_total:.1f}"
        case records.Alert():
            return f"{t} ALERT {rec.severity} {rec.category} tenant={rec.tenant} stream={rec.stream_id} {rec.summary}"
        case records.Frame():
            return f"{t} frame {rec.frame_id} tenant={rec.tenant} stream={rec.stream_id} seq={rec.seq} {rec.sample_reason} {len(rec.jpeg)}B"
        case records.Scores():
            top = sorted(rec.scores.items(), key=lambda kv: -kv[1])[:3]
            return (
                f"{t} scores tenant={rec.tenant} stream={rec.stream_id} seq={rec.seq} "
                + " ".join(f"{k}={v:.2f}" for k, v in top)
            )
        case records.AuditEntry():
            body = rec.record
            return (
                f"{t} audit #{rec.seq} {rec.record_type} tenant={body.get('tenant', '-')} "
                f"{body.get('decision_id') or body.get('enforcement_id') or body.get('review_id')}"
            )
        case records.DeadLetter():
            return f"{t} dead-letter {rec.stage}/{rec.reason}: {rec.error}"
        case _:
            return f"{t} {rec.TYPE} {rec.model_dump_json()[:200]}"


def as_json(rec: records._Record) -> str:
    body = rec.model_dump(mode="json", exclude={"jpeg"} if isinstance(rec, records.Frame) else None)
    return json.dumps({"type": rec.TYPE, **body})


async def tail(
    settings: Settings, topic: str, *, as_json: bool, from_start: bool, limit: int, timeout: float
) -> int:
    key = topic.replace("-", "_")
    if key not in TOPIC_KEYS:
        raise SettingsError(f"unknown topic {topic!r}; choose one of {', '.join(TOPIC_KEYS)}")
    c = consumer(
        settings,
        settings.topics.name(key),
        group_id=None,
        auto_offset_reset="earliest" if from_start else "latest",
    )
    await c.start()
    seen, last = 0, time.monotonic()
    try:
        while not limit or seen < limit:
            batch = await c.getmany(timeout_ms=500)
            if not batch and timeout and time.monotonic() - last > timeout:
                break
            for msgs in batch.values():
                for m in msgs:
                    last = time.monotonic()
                    try:
                        rec = records.decode(m.value)
                        line = globals()["as_json"](rec) if as_json else summary(rec)
                    except RecordDecodeError as exc:
                        line = json.dumps({"error": str(exc)}) if as_json else f"unreadable: {exc}"
                    print(line, flush=True)
                    seen += 1
    except asyncio.CancelledError:
        pass
    finally:
        await c.stop()
    return 0
