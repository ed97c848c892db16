"""Feed the console's index from the decisions, reviews and enforcement topics.

Reads from the start (no consumer group: every console replica builds the whole index) and
keeps following. A record it cannot read is skipped and counted: the workers dead-letter
those already, and the console only reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import Counter

from console.index import Index
from framewatch import kafkaio, records
from framewatch.errors import RecordDecodeError
from framewatch.metrics import stage_registry
from framewatch.records import AccountForget
from framewatch.settings import Settings

log = logging.getLogger(__name__)
UNREADABLE = Counter(
    "framewatch_console_unreadable_total",
    "records the console skipped",
    registry=stage_registry("console"),
)


OnForget = Callable[[AccountForget, list[str]], Awaitable[None]]


class Tailer:
    def __init__(self, settings: Settings, index: Index, on_forget: OnForget | None = None) -> None:
        self.settings = settings
        self.index = index
        self.on_forget = on_forget  # an erased account: drop what the console keeps elsewhere
        self.ready = asyncio.Event()  # caught up with the ends seen at start
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        t = self.settings.topics
        names = [t.name(k) for k in ("decisions", "reviews", "enforcement")]
        cons = kafkaio.consumer(self.settings, *names, group_id=None)
        await cons.start()
        try:
            ends: dict | None = None
            while not self._stop.is_set():
                batch = await cons.getmany(timeout_ms=250, max_records=5000)
                for msgs in batch.values():
                    for m in msgs:
                        try:
                            rec = records.decode(m.value)
                        except RecordDecodeError:
                            UNREADABLE.inc()
                            continue
                        self.index.add(rec)
                        if isinstance(rec, AccountForget) and self.on_forget is not None:
                            ids = self.index.by_account.get((rec.tenant, rec.account_id), [])
                            await self.on_forget(rec, list(ids))
                if not self.ready.is_set():
                    parts = cons.assignment()
                    if parts:
                        ends = ends or await cons.end_offsets(list(parts))
                        behind = [p for p, o in ends.items() if await cons.position(p) < o]
                        if not behind:
                            self.ready.set()
        except Exception:
            log.exception("the console stopped reading its topics; restart it")
            raise
        finally:
            await cons.stop()
