"""A stream's position (session, seq, pts, last hash) is saved in Redis per tenant and stream,
and a restarted ingester continues it: the same life for a pull restarted soon, a new life
(new session, seq still going on) otherwise."""

from __future__ import annotations

import pytest

from framewatch import records, redisio
from framewatch.settings import Settings
from ingest.engine import SampleEngine, StreamMeta
from ingest.position import Position, PositionStore
from ingest.runner import StreamIngester

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
