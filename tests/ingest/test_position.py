"""A stream's position (session, seq, pts, last hash) is saved in Redis per tenant and stream,
and a restarted ingester continues it: the same life for a pull restarted soon, a new life
(new session, seq still going on) otherwise."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from framewatch import records, redisio
from framewatch.settings import Settings
from ingest.engine import SampleEngine, StreamMeta
from ingest.position import Position, PositionStore
from ingest.runner import StreamIngester
from tests.ingest.helpers import video

pytestmark = pytest.mark.integration

PULL = "rtmp://93.184.216.34/live/x"  # never opened here: only the resume decision is tested


async def test_positions_are_saved_per_tenant_and_stream(settings: Settings) -> None:
    client = redisio.async_client(settings)
    try:
        store = PositionStore(settings, client)
        pos = Position("sess-1", 42, 17.5, "ab" * 32, records.now())
        await store.save("alpha", "cam", pos)
        assert await store.load("alpha", "cam") == pos
        assert await store.load("beta", "cam") is None
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("source", "age_s", "same_life"),
    [(PULL, 1.0, True), (PULL, 3600.0, False), ("/videos/clip.mp4", 1.0, False)],
)
async def test_a_restarted_ingester_continues_the_stream(
    settings: Settings, source: str, age_s: float, same_life: bool
) -> None:
    client = redisio.async_client(settings)
    try:
        store = PositionStore(settings, client)
        saved = Position("sess-1", 42, 17.5, "ab" * 32, records.now() - age_s)
        await store.save("alpha", "cam", saved)
        ing = StreamIngester(settings, source, StreamMeta("cam", "acct", "alpha"))
        await ing._resume(store)
    finally:
        await client.aclose()
    eng = ing.engine
    assert eng.seq == 42  # seq goes on either way (it is diagnostic only)
    assert (eng.session == "sess-1") is same_life
    assert (eng._pts_offset > 17.5) is same_life


def test_a_new_engine_is_a_new_life(settings: Settings) -> None:
    a = SampleEngine(settings, StreamMeta("cam", "acct", "alpha"))
    b = SampleEngine(settings, StreamMeta("cam", "acct", "alpha"))
    assert a.session != b.session and a.seq == b.seq == 0


async def test_a_save_that_loses_its_cancellation_cannot_hold_the_end_of_a_stream(
    settings: Settings, kafka_topics: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen in the demo, 1 run in 4 on a loaded 2-core box: the Redis client lost the
    cancellation of a position save as the stream ended, the saver went on looping, and the
    ingest process never ended. The stream must end anyway, its last position saved."""
    fast = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"position_save_s": 0.01})}
    )
    real_save = PositionStore.save
    saved: list[Position] = []

    async def save_losing_its_cancel(
        self: PositionStore, tenant: str, stream_id: str, pos: Position
    ) -> None:
        with contextlib.suppress(asyncio.CancelledError):  # lost, as the client lost it
            await asyncio.sleep(1.0)  # a Redis round trip on a loaded box: nearly always here
        await real_save(self, tenant, stream_id, pos)
        saved.append(pos)

    monkeypatch.setattr(PositionStore, "save", save_losing_its_cancel)
    ing = StreamIngester(fast, video("doorknob-hd-no-bar.mp4"), StreamMeta("cam", "acct", "alpha"))
    summary = await asyncio.wait_for(ing.run(), 60)
    assert summary.state == "ended" and summary.sent > 0
    assert saved and saved[-1].seq == summary.sent  # the position after its last frame
