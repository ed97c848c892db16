"""Tasks end when cancelled, though a library swallowed the cancel (``framewatch.tasks``)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from framewatch import redisio
from framewatch.settings import Settings
from framewatch.tasks import cancel_and_wait


async def test_a_task_that_swallows_its_first_cancel_still_ends() -> None:
    swallowed = []

    async def loop() -> None:
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if not swallowed:  # as asyncio.wait_for does on 3.11 (CPython issue 86296)
                    swallowed.append(True)
                    continue
                raise

    t = asyncio.create_task(loop())
    await asyncio.sleep(0.02)
    assert await cancel_and_wait([t], timeout_s=5) == set()
    assert swallowed and t.cancelled()


class Stubborn:
    """A task that catches every cancel, until released."""

    def __init__(self) -> None:
        self.released = False
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self.released:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue

    async def release(self) -> None:
        """Let it end, for the test's loop to close."""
        self.released = True
        await asyncio.wait({self.task}, timeout=5)
        assert self.task.done()


async def test_a_task_that_never_ends_is_returned_not_waited_on_forever() -> None:
    held = Stubborn()
    await asyncio.sleep(0.02)
    assert await cancel_and_wait([held.task, None], timeout_s=0.3) == {held.task}
    assert not held.task.done()
    await held.release()


async def test_errors_of_ended_tasks_are_retrieved_and_the_caller_can_be_cancelled() -> None:
    async def boom() -> None:
        raise ValueError("already failed")

    failed = asyncio.create_task(boom())
    await asyncio.sleep(0)
    assert await cancel_and_wait([failed]) == set()

    held = Stubborn()
    await asyncio.sleep(0.02)
    # a task that swallows every cancel keeps the stopper waiting; cancelling the stopper itself
    # still works
    s = asyncio.create_task(cancel_and_wait([held.task], timeout_s=30))
    await asyncio.sleep(0.1)
    assert not s.done()
    s.cancel()
    with pytest.raises(asyncio.CancelledError):
        await s
    await held.release()


@pytest.mark.integration
async def test_loops_over_a_real_redis_client_end_every_time(settings: Settings) -> None:
    """redis-py over the session's real Redis: a bare cancel of a loop of commands is lost
    now and then (the loop runs on); cancel_and_wait ends every one."""
    client = redisio.async_client(settings)
    try:
        ran_on = 0
        for _ in range(25):

            async def loop() -> None:
                while True:
                    await client.get("x")

            t = asyncio.create_task(loop())
            await asyncio.sleep(random.random() * 0.003)
            t.cancel()
            done, _ = await asyncio.wait({t}, timeout=0.1)
            ran_on += not done
            assert await cancel_and_wait([t], timeout_s=5) == set()
            assert t.done()
        print(f"a bare cancel was lost {ran_on} times of 25")
    finally:
        await client.aclose()


def test_stage_and_core_code_wait_with_asyncio_timeout_not_wait_for() -> None:
    """One way to bound a wait: ``asyncio.timeout``, which passes a cancel on; ``wait_for``
    drops one on 3.11 (framewatch.tasks)."""
    root = Path(__file__).resolve().parents[2]
    found = [
        f"{p.relative_to(root)}:{n}"
        for wing in ("framewatch", "ingest", "scoring", "streams", "alerts", "console")
        for p in sorted((root / wing).rglob("*.py"))
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if "asyncio.wait_for(" in line
    ]
    assert found == []
