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
