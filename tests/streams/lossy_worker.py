"""`python -m tests.streams.lossy_worker streams worker`: the real streams worker, except that
Faust's fetch loop drops the scores records at the offsets in LOSSY_OFFSETS (comma-separated,
each once) after fetching them, as Faust 0.15 can during a rebalance: its consumer has moved
past them and never hands them to the agent. For tests/streams/test_stalls.py."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from typing import Any

from faust.transport.consumer import Consumer

from framewatch.cli import main

DROP = {int(o) for o in os.environ.get("LOSSY_OFFSETS", "").split(",") if o}
_fetch = Consumer.getmany


async def _lossy(self: Consumer, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
    async for tp, message in _fetch(self, timeout):
        if tp.topic.endswith(".scores") and message.offset in DROP:
            DROP.discard(message.offset)
            print(f"lossy_worker: dropped {tp.topic}[{tp.partition}]@{message.offset}", flush=True)
            continue
        yield tp, message


Consumer.getmany = _lossy  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
