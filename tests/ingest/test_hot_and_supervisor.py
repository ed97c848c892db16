"""Adaptive rate from the Redis hot flag, and the supervisor running registered pulls."""

from __future__ import annotations

import asyncio

import pytest

from framewatch import kafkaio, redisio, scope
from framewatch.settings import Settings
from ingest import registry
from ingest.engine import StreamMeta
from ingest.runner import StreamIngester
from tests.ingest.helpers import consume, video

pytestmark = pytest.mark.timeout(90)


async def test_hot_stream_is_sampled_faster_until_the_flag_expires(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings(
        ingest={"hot_fps": 4.0, "hot_poll_s": 0.2, "dedup_max_distance": -1}
    )
    await kafkaio.create_topics(settings)
    r = redisio.sync_client(settings)
    r.set(
        redisio.key(settings, "hot", scope.key("default", "hotcam")), "1", px=2500
    )  # hot for the first ~2.5 s
    ing = StreamIngester(
        settings, video("doorknob-hd-no-bar.mp4"), StreamMeta("hotcam", "a"), realtime=True
    )
    summary = await ing.run()
    hot = summary.by_reason.get("hot", 0)
    # ~2.5 s at 4 fps while hot, then 1 fps for the remaining ~1.8 s
    assert 6 <= hot <= 11, summary
    assert summary.by_reason.get("interval", 0) >= 1
    frames = await consume(settings, "frames", summary.sent)
    reasons = [f.sample_reason for f in frames]
    assert reasons[0] == "first" and "hot" in reasons
    assert reasons.index("interval") > max(i for i, x in enumerate(reasons) if x == "hot")


async def test_supervisor_starts_registered_pulls_and_stops_removed(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings(ingest={"supervisor_poll_s": 0.2})
    await kafkaio.create_topics(settings)
    r = redisio.sync_client(settings)
    registry.add(settings, r, registry.SourceEntry(video("doorknob-hd-no-bar.mp4"), "s1", "a"))
    registry.add(
        settings, r, registry.SourceEntry(video("pattern-hd-no-bar.mp4"), "s2", "b", fps=2)
    )
    assert [e.stream_id for e in registry.list_all(settings, r)] == ["s1", "s2"]
    producer = kafkaio.producer(settings)
    await producer.start()
    client = redisio.async_client(settings)
    sup = registry.Supervisor(settings, producer, client)
    task = asyncio.create_task(sup.run())
    try:
        frames = await consume(settings, "frames", 5 + 14, timeout=30)
        by_stream = {sid: [f.seq for f in frames if f.stream_id == sid] for sid in ("s1", "s2")}
        assert by_stream["s1"] == list(range(len(by_stream["s1"]))) and len(by_stream["s1"]) >= 4
        assert len(by_stream["s2"]) >= 12
        assert registry.remove(settings, r, "default", "s1")
        await asyncio.sleep(0.6)
        assert "default/s1" not in sup.running and "default/s2" in sup.running
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
        await producer.stop()
