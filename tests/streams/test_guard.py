"""The worker never commits past a record it has not handled: a failed send ends it, and records
Faust skipped are read from the broker before the record that came after them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.types import TP
from faust.types.tuples import Message

from framewatch import kafkaio
from framewatch.kafkaio import create_topics
from framewatch.settings import Settings
from streams import guard
from streams.app import build_app, keep


def test_failed_send_exits_the_worker(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(guard.os, "_exit", fake_exit)
    app = build_app(settings)
    assert any(isinstance(s, guard.ExitOnSendError) for s in app.sensors)
    with pytest.raises(SystemExit):
        # Faust calls this from the send's done-callback, before the commit's thread hop
        app.sensors.on_send_error(
            None, RuntimeError("MessageSizeTooLarge"), dict.fromkeys(app.sensors)
        )
    assert codes == [guard.EXIT_SEND_FAILED]


async def test_commit_flush_waits_for_every_buffered_changelog_write(settings: Settings) -> None:
    app = build_app(settings)
    buf = app.producer.buffer
    sent: list[object] = []

    async def slow_send(fut: object) -> None:  # a loaded box: each hand-over takes 0.3 s
        await asyncio.sleep(0.3)
        sent.append(fut)

    buf._send_pending = slow_send
    guard.drain_before_commit(app.producer)
    await buf.start()
    try:
        for i in range(3):
            buf.pending.put_nowait(i)
        await buf.flush()  # Faust's own flush returns after 0.1 s with nothing sent
        assert sent == [0, 1, 2]
    finally:
        await buf.stop()


async def test_commit_flush_waits_for_background_work_and_what_it_sends(
    settings: Settings,
) -> None:
    # evidence pins run off the decision path; a commit must not pass the record they came from
    app = build_app(settings)
    buf = app.producer.buffer
    sent: list[object] = []

    async def send_pending(fut: object) -> None:
        sent.append(fut)

    buf._send_pending = send_pending
    background = guard.Background(limit=2)
    guard.drain_before_commit(app.producer, background)
    await buf.start()
    try:

        async def pin(n: int) -> None:
            await asyncio.sleep(0.3)  # the file writes, on a slow disk
            buf.pending.put_nowait(f"pinned-{n}")  # then its audit record is sent

        for n in range(3):  # the third waits for room: at most 2 at once
            await background.start(pin(n))
        await buf.flush()
        assert sent == ["pinned-0", "pinned-1", "pinned-2"]
    finally:
        await buf.stop()


def test_a_gap_in_offsets_names_the_missing_records() -> None:
    order, tp = guard.Contiguous(), ("scores", 0)
    assert not order.check(tp, 36, committed=36)
    assert not order.check(tp, 37, committed=36)
    assert order.check(tp, 40, committed=36) == range(38, 40)  # 38 and 39 never came
    assert not order.check(tp, 41, committed=36)
    assert not order.check(tp, 39, committed=36)  # a re-delivery is processed again
    assert not order.check(tp, 42, committed=36)  # ... and moves nothing back
    assert not order.check(("scores", 1), 5, committed=5)  # partitions apart


def test_the_first_record_after_a_rebalance_is_checked_against_the_commit() -> None:
    order, tp = guard.Contiguous(), ("scores", 0)
    assert not order.check(tp, 10, committed=None)  # never committed: take it
    order.reset()
    assert order.check(tp, 14, committed=12) == range(12, 14)
    order.reset()
    assert not order.check(tp, 9, committed=12)


def test_an_idle_agent_with_records_left_in_its_partition_is_stalled() -> None:
    tp, other = TP("scores", 0), TP("scores", 1)
    order = guard.Contiguous(expected={tp: 7})
    ends = {tp: 9, other: 5}.get
    committed = {tp: 5, other: 5}
    assert not order.stalled([tp], ends, committed, now=10.0, stall_s=1.0)  # agent busy
    order.waiting["scores"] = 9.5
    assert not order.stalled([tp], ends, committed, now=10.0, stall_s=1.0)  # just asked
    order.waiting["scores"] = 8.0  # waited 2 s while offsets 7 and 8 are in the partition
    assert order.stalled([tp, other], ends, committed, now=10.0, stall_s=1.0) == {tp: range(7, 9)}
    order.reset()  # after a rebalance: from the commit
    assert order.stalled([tp], ends, committed, now=10.0, stall_s=1.0) == {tp: range(5, 9)}
    assert not order.stalled([tp], {tp: 5}.get, committed, now=10.0, stall_s=1.0)  # all got
    never = {tp: None}  # never committed: from the start (Kafka reads on from the log start)
    assert order.stalled([tp], ends, never, now=10.0, stall_s=1.0) == {tp: range(0, 9)}
    assert order.stalled([tp], ends, committed, 10.0, 1.0, most=2) == {tp: range(5, 7)}
    order.rewait(9.5)  # a rebalance just ended: Faust fetches the partition again itself
    assert not order.stalled([tp], ends, committed, now=10.0, stall_s=1.0)
    assert order.stalled([tp], ends, committed, now=10.6, stall_s=1.0) == {tp: range(5, 9)}
    assert not order.stalled([tp], {}.get, committed, now=10.0, stall_s=1.0)  # end unknown
    assert not order.stalled([TP("audit", 0)], ends, {}, now=10.0, stall_s=1.0)  # no agent


@pytest.mark.integration
async def test_records_faust_skipped_are_read_from_the_broker_in_order(
    make_settings: Callable[..., Settings],
) -> None:
    """The agent sees every offset once, in order, and the recovered ones are acked (so the
    commit can move past them); offsets that no longer exist are simply not there."""
    settings = make_settings(topics={"partitions": 1})
    await create_topics(settings)
    topic = settings.topics.name("scores")
    prod = kafkaio.producer(settings)
    await prod.start()
    try:
        for i in range(10):
            await prod.send_and_wait(topic, f"v{i}".encode(), key=b"k", partition=0)
    finally:
        await prod.stop()
    tp = TP(topic, 0)

    def ev(offset: int) -> SimpleNamespace:
        m = Message(topic, 0, offset, 0.0, 0, None, b"k", f"v{offset}".encode(), None, tp=tp)
        return SimpleNamespace(message=m, key=b"k", value=m.value)

    class Stream:
        async def events(self):  # type: ignore[no-untyped-def]
            for offset in (0, 1, 2, 6, 7, 9):  # Faust lost 3-5 and 8
                yield ev(offset)

    acked: list[int] = []
    consumer = SimpleNamespace(_committed_offset={tp: 0}, ack=lambda m: acked.append(m.offset))
    app = SimpleNamespace(consumer=consumer)
    got = [
        (e.message.offset, e.value)
        async for e in guard.in_order(app, settings, Stream(), guard.Contiguous())
    ]
    assert got == [(i, f"v{i}".encode()) for i in range(10)]
    assert acked == [3, 4, 5, 8]  # Faust acks the events it delivered itself


async def test_commit_flush_waits_for_the_audit_chain_to_settle() -> None:
    app = faust.App("settle-probe", broker="kafka://127.0.0.1:1")
    links_saved = asyncio.Event()

    async def settle() -> None:  # ChainWriter.settle: links in flight acknowledged, head saved
        await links_saved.wait()

    guard.drain_before_commit(app.producer, None, settle)
    flush = asyncio.ensure_future(app.producer.buffer.flush())
    await asyncio.sleep(0.05)
    assert not flush.done()  # no commit while audit links are in flight
    links_saved.set()
    await asyncio.wait_for(flush, 1)

    threaded = faust.App("settle-probe-2", broker="kafka://127.0.0.1:1", producer_threaded=True)
    with pytest.raises(RuntimeError, match="unthreaded"):  # nothing would wait: refuse
        guard.drain_before_commit(threaded.producer, None, settle)


def _probe_table(app: faust.App) -> tuple[Any, list[tuple[int, str, object]]]:
    table = app.Table("state-probe", default=None, key_type=str)
    sent: list[tuple[int, str, object]] = []
    table.send_changelog = lambda part, key, value, *a, **kw: sent.append((part, key, value))
    return table, sent


async def test_a_state_changed_on_every_frame_is_written_once_a_commit() -> None:
    # a stream going bad changes its state on most frames: one changelog record per commit,
    # carrying the last state, and sent before the commit's offsets go out
    app = faust.App("deferred-probe", broker="kafka://127.0.0.1:1")
    table, sent = _probe_table(app)
    writes = guard.DeferredWrites()
    guard.drain_before_commit(app.producer, writes=writes)
    tp = TP("scores", 2)
    for n in range(5):
        keep(table, "t/s1", {"n": n}, True, writes, tp)
        assert table.data["t/s1"] == {"n": n}  # the next record reads it at once
    keep(table, "t/s2", {"n": 0}, False, writes, tp)  # quiet: memory only, as before
    assert sent == []
    await app.producer.buffer.flush()  # what Faust awaits before committing offsets
    assert sent == [(2, "t/s1", {"n": 4})]
    await app.producer.buffer.flush()
    assert len(sent) == 1  # nothing changed since


async def test_a_deferred_row_carries_a_later_write_and_forgets_given_away_partitions() -> None:
    app = faust.App("deferred-probe-2", broker="kafka://127.0.0.1:1")
    table, sent = _probe_table(app)
    writes = guard.deferred_writes(app)
    keep(table, "t/s1", {"v": "decided"}, True, writes, TP("scores", 0))
    table.data["t/s1"] = {"v": "reviewed"}  # a review agent's write after it, same row
    keep(table, "t/s2", {"v": "x"}, True, writes, TP("scores", 1))
    await app.on_partitions_revoked.send({TP("scores", 1)})  # a rebalance gave partition 1 away
    writes.flush()
    assert sent == [(0, "t/s1", {"v": "reviewed"})]
