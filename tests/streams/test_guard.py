"""A send that fails for good ends the worker before Faust can commit past it."""

from __future__ import annotations

import asyncio

import pytest

from framewatch.settings import Settings
from streams import guard
from streams.app import build_app


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


def test_a_gap_in_offsets_seeks_back_and_holds_back_what_came_instead() -> None:
    order, tp = guard.Contiguous(), ("scores", 0)
    assert order.check(tp, 36, committed=36) == (True, None)
    assert order.check(tp, 37, committed=36) == (True, None)
    # 38 and 39 never reached the agent: read again from 38, hold back 40 and 41
    assert order.check(tp, 40, committed=36) == (False, 38)
    assert order.check(tp, 41, committed=36) == (False, None)  # one seek is enough
    for offset in (38, 39, 40, 41, 42):  # after the seek, everything comes in order
        assert order.check(tp, offset, committed=36) == (True, None)
    assert order.check(("scores", 1), 5, committed=5) == (True, None)  # partitions apart


def test_the_first_record_after_a_rebalance_is_checked_against_the_commit() -> None:
    order, tp = guard.Contiguous(), ("scores", 0)
    assert order.check(tp, 10, committed=None) == (True, None)  # never committed: take it
    order.reset()
    assert order.check(tp, 14, committed=12) == (False, 12)
    order.reset()
    assert order.check(tp, 9, committed=12) == (True, None)  # a re-delivery is processed


def test_a_partition_that_starts_again_past_the_gap_goes_on() -> None:
    # retention or compaction removed 20..29: after the seek back the partition starts at 30
    order, tp = guard.Contiguous(), ("scores", 0)
    assert order.check(tp, 19, committed=19) == (True, None)
    assert order.check(tp, 30, committed=19) == (False, 20)
    assert order.check(tp, 31, committed=19) == (False, None)
    assert order.check(tp, 30, committed=19) == (True, None)  # it came again: nothing before
    assert order.check(tp, 31, committed=19) == (True, None)
