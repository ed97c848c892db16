"""The pipelined audit chain writer without a broker: slots, saves, settle, and crashes.

A fake broker acknowledges links and head saves in the order they were sent (as aiokafka does
for one partition); a crash may leave some of what was sent written but not acknowledged. The
chain that results from any crash and replay must verify with a window of ``limit`` links.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from typing import Any

import pytest

from framewatch import records
from streams import audit
from streams.audit_writer import ChainBroken, ChainWriter
from tests.streams.test_audit_chain import review


class Broker:
    """One audit partition and the head table's changelog, acknowledged in send order."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.queue: deque[tuple[str, Any, asyncio.Future[Any]]] = deque()
        self.topic: list[bytes] = []
        self.table: dict[int, dict[str, Any]] = {}
        self.sent_links = 0

    def send_link(self, raw: bytes) -> asyncio.Future[Any]:
        fut = asyncio.get_running_loop().create_future()
        self.queue.append(("link", raw, fut))
        self.sent_links += 1
        return fut

    def save(self, part: int, head: audit.Head) -> asyncio.Future[Any]:
        fut = asyncio.get_running_loop().create_future()
        self.queue.append(("head", (part, head.to_json()), fut))
        return fut

    def load(self, part: int) -> audit.Head:
        return audit.Head.from_json(self.table.get(part))

    def _apply(self, kind: str, item: Any) -> None:
        if kind == "link":
            self.topic.append(item)
        else:
            self.table[item[0]] = item[1]

    async def pump(self) -> None:
        while True:
            for _ in range(self.rng.randint(0, 3)):
                await asyncio.sleep(0)
            for _ in range(min(len(self.queue), self.rng.randint(1, 8))):  # one batch
                kind, item, fut = self.queue.popleft()
                self._apply(kind, item)
                fut.set_result(None)
            await asyncio.sleep(0)

    def crash(self) -> None:
        """What was in flight: a prefix may have been written without its ack arriving."""
        for _ in range(self.rng.randint(0, len(self.queue))):
            kind, item, _fut = self.queue.popleft()
            self._apply(kind, item)
        self.queue.clear()


async def run_worker(broker: Broker, limit: int, start: int, inputs: int, steps: int | None) -> int:
    """Chain inputs from the committed offset ``start``; commit (after settle) as it goes.
    Runs ``steps`` loop turns then "crashes" (None: to the end, then settles). Returns the
    committed offset."""
    writer = ChainWriter(limit, broker.load, broker.save)
    committed, acked = start, start
    pump = asyncio.ensure_future(broker.pump())

    async def chain() -> None:
        nonlocal acked
        for off in range(start, inputs):
            step = audit.append(writer.tip(0), review(off), src_offset=off, written_at=2.0 + off)
            if step is not None:
                entry, head = step

                async def send(entry: Any = entry) -> asyncio.Future[Any]:
                    return broker.send_link(records.encode(entry))

                await writer.write(0, head, send)
            acked = off + 1  # Faust acks the event once the agent moves on

    async def commits() -> None:
        nonlocal committed
        while True:
            await asyncio.sleep(0)
            target = acked  # offsets first, then the flush (faust _commit_offsets)
            await writer.settle()
            committed = target

    agent = asyncio.ensure_future(chain())
    committer = asyncio.ensure_future(commits())
    try:
        if steps is None:
            await agent
            await writer.settle()
            committed = acked
        else:
            for _ in range(steps):
                await asyncio.sleep(0)
                assert writer.in_flight <= limit
    finally:
        for task in (agent, committer, pump):
            task.cancel()
        await asyncio.gather(agent, committer, pump, return_exceptions=True)
    if steps is not None:
        broker.crash()
    return committed


@pytest.mark.parametrize("seed", range(12))
async def test_crashes_mid_burst_leave_a_chain_that_verifies(seed: int) -> None:
    rng = random.Random(seed)
    limit, inputs = 16, 300
    broker = Broker(rng)
    committed = 0
    for _ in range(4):  # killed mid-burst four times, restarted from the committed offset
        committed = await run_worker(broker, limit, committed, inputs, rng.randint(5, 400))
    await run_worker(broker, limit, committed, inputs, None)

    v = audit.Verifier(0, window=limit)
    for off, raw in enumerate(broker.topic):
        assert v.feed(off, raw), v.broken
    assert v.entries == inputs and v.head_seq == inputs - 1
    assert v.duplicates == len(broker.topic) - inputs
    assert broker.load(0).seq == inputs - 1 and broker.load(0).offset == inputs - 1


async def test_crashes_resend_links_and_a_one_link_window_rejects_them() -> None:
    """Not vacuous: some seed re-sends more than one link, which the old verifier (the
    previous link only) would have reported as broken."""
    worst = 0
    for seed in range(12):
        rng = random.Random(seed)
        broker, committed = Broker(rng), 0
        for _ in range(4):
            committed = await run_worker(broker, 16, committed, 300, rng.randint(5, 400))
        await run_worker(broker, 16, committed, 300, None)
        v = audit.Verifier(0, window=1)
        for off, raw in enumerate(broker.topic):
            if not v.feed(off, raw):
                break
        worst = max(worst, len(broker.topic) - 300)
        if v.broken is not None:
            return
    pytest.fail(f"no seed re-sent a run of links (most duplicates: {worst})")


async def test_links_in_flight_are_bounded_and_saves_coalesce() -> None:
    saves: list[tuple[int, asyncio.Future[Any]]] = []
    acks: list[asyncio.Future[Any]] = []
    loop = asyncio.get_running_loop()

    def save(part: int, head: audit.Head) -> asyncio.Future[Any]:
        saves.append((head.seq, loop.create_future()))
        return saves[-1][1]

    async def send() -> asyncio.Future[Any]:
        acks.append(loop.create_future())
        return acks[-1]

    w = ChainWriter(3, lambda p: audit.Head(seq=4, hash="h4", offset=40), save)
    assert w.tip(0).seq == 4  # loaded from the table
    for seq in (5, 6, 7):
        await w.write(0, audit.Head(seq, f"h{seq}", seq * 10), send)
    assert w.tip(0).seq == 7 and w.in_flight == 3
    fourth = asyncio.ensure_future(w.write(0, audit.Head(8, "h8", 80), send))
    await asyncio.sleep(0.01)
    assert not fourth.done()  # 3 in flight: the agent waits

    settled = asyncio.ensure_future(w.settle())
    acks[0].set_result(None)
    await asyncio.sleep(0)
    assert [s for s, _ in saves] == [5]  # the saved head follows acknowledged links only
    acks[1].set_result(None)
    acks[2].set_result(None)
    await asyncio.sleep(0)
    assert [s for s, _ in saves] == [5]  # one save in flight per partition
    saves[0][1].set_result(None)
    await asyncio.sleep(0.01)
    assert fourth.done() and [s for s, _ in saves] == [5, 7]  # 6 and 7 in one save
    assert not settled.done()  # 6 and 7 are acknowledged but not saved yet
    saves[1][1].set_result(None)
    await asyncio.wait_for(settled, 1)  # link 8 came after settle began: not waited for
    assert w.in_flight == 1 and w.tip(0).seq == 8

    w.reset()
    assert w.tip(0).seq == 4  # the fake table was never written: reloaded from it


async def test_a_failed_link_stops_the_chain_and_the_commit() -> None:
    loop = asyncio.get_running_loop()
    ack: asyncio.Future[Any] = loop.create_future()

    async def send() -> asyncio.Future[Any]:
        return ack

    failed: list[BaseException] = []
    w = ChainWriter(4, lambda p: audit.Head(), lambda p, h: loop.create_future(), failed.append)
    await w.write(0, audit.Head(0, "h0", 0), send)
    settled = asyncio.ensure_future(w.settle())
    ack.set_exception(RuntimeError("MessageSizeTooLarge"))
    with pytest.raises(ChainBroken):
        await asyncio.wait_for(settled, 1)
    assert [str(e) for e in failed] == ["MessageSizeTooLarge"]  # the worker exits there
    with pytest.raises(ChainBroken):
        await w.write(0, audit.Head(1, "h1", 1), send)
