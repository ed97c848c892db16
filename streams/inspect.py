"""Read topics back: a table's state from its changelog (`framewatch account show`), or every
record of a topic (`review resolve` finding a decision, `review stats`, `audit verify`)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from framewatch import kafkaio
from framewatch.errors import FramewatchError
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


async def scan(
    settings: Settings,
    topic: str,
    on_message: Callable[[ConsumerRecord], bool | None],
    timeout_s: float = 120.0,
    on_ranges: Callable[[dict[int, tuple[int, int]]], None] | None = None,
) -> dict[int, tuple[int, int]]:
    """Read every partition of ``topic`` from its oldest to its newest record (as of the start).

    ``on_message`` sees records in offset order within each partition; returning True stops
    the scan early. ``on_ranges`` (and the return value) get partition -> (first offset, end
    offset) before any record is read.
    """
    cons = AIOKafkaConsumer(
        **kafkaio.client_config(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await cons.start()
    try:
        if topic not in await cons.topics():
            raise FramewatchError(
                f"topic {topic!r} does not exist: create topics with `framewatch topics create` "
                "(or start the worker), and check FRAMEWATCH_TOPICS__PREFIX matches the worker's"
            )
        cons.subscribe([topic])
        deadline = time.monotonic() + timeout_s
        while not cons.assignment() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # the assignment follows the topic's metadata
        tps = sorted(cons.assignment(), key=lambda tp: tp.partition)
        begins = await cons.beginning_offsets(tps)
        ends = await cons.end_offsets(tps)
        ranges = {tp.partition: (begins[tp], ends[tp]) for tp in tps}
        if on_ranges is not None:
            on_ranges(ranges)
        await cons.seek_to_beginning(*tps)
        pending = {tp for tp in tps if ends[tp] > begins[tp]}
        while pending:
            if time.monotonic() > deadline:
                raise FramewatchError(
                    f"timed out reading {topic!r} after {timeout_s:.0f} s; is the broker healthy?"
                )
            batch = await cons.getmany(*pending, timeout_ms=500)
            for tp, msgs in batch.items():
                for m in msgs:
                    if m.offset < ends[tp] and on_message(m):
                        return ranges
            for tp in list(pending):
                if await cons.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return ranges
    finally:
        await cons.stop()
