"""Read a table's state from its changelog topic (for `framewatch account show` and tests)."""

from __future__ import annotations

import json
import time
from typing import Any

from aiokafka import AIOKafkaConsumer

from framewatch import kafkaio
from framewatch.settings import Settings


def _key(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    try:
        v = json.loads(text)
    except ValueError:
        return text
    return v if isinstance(v, str) else text


async def table_snapshot(settings: Settings, topic: str, idle_s: float = 1.0) -> dict[str, Any]:
    """The last value of every key in a changelog topic (None for deleted keys)."""
    cons = AIOKafkaConsumer(
        topic,
        **kafkaio.client_config(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await cons.start()
    latest: dict[str, Any] = {}
    try:
        parts = cons.assignment()
        ends = await cons.end_offsets(list(parts)) if parts else {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = [await _done(cons, tp, end) for tp, end in ends.items()]
            if all(done):
                break
            batch = await cons.getmany(timeout_ms=int(idle_s * 1000))
            for msgs in batch.values():
                for m in msgs:
                    if m.key is None:
                        continue
                    latest[_key(m.key)] = json.loads(m.value) if m.value else None
    finally:
        await cons.stop()
    return latest


async def _done(cons: AIOKafkaConsumer, tp: Any, end: int) -> bool:
    return end == 0 or await cons.position(tp) >= end
