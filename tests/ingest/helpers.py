"""Shared helpers of the ingest tests: test data paths and reading the frames topic."""

from __future__ import annotations

import asyncio
from pathlib import Path

from framewatch import kafkaio, records
from framewatch.settings import Settings

REPO = Path(__file__).resolve().parents[2]
# CI: a fresh clone with shared/ beside it; git worktrees here sit one level deeper
TESTDATA = next(
    (p for p in (REPO / ".." / "shared" / "testdata", REPO / ".." / ".." / "shared" / "testdata")
     if p.is_dir()),
    REPO / ".." / "shared" / "testdata",
)  # fmt: skip
VIDEOS = TESTDATA / "videos"
VPDQ = TESTDATA / "vpdq"


def video(name: str) -> str:
    return str((VIDEOS / name).resolve())


async def consume(settings: Settings, key: str, n: int, timeout: float = 20.0) -> list[object]:
    """Read up to n records of topic `key` (frames/dead_letters) from the start."""
    c = kafkaio.consumer(
        settings, settings.topics.name(key), group_id=f"test-{key}", auto_offset_reset="earliest"
    )
    await c.start()
    out: list[object] = []
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while len(out) < n and loop.time() < end:
            batch = await c.getmany(timeout_ms=500)
            for msgs in batch.values():
                out.extend(records.decode(m.value) for m in msgs)
    finally:
        await c.stop()
    return out
