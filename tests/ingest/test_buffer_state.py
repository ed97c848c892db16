"""Live sources keep the newest samples when the consumer is slow (counted); files wait and lose
nothing; a source's state moves only along the allowed transitions."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from aiohttp import web

from framewatch.settings import Settings
from ingest.buffer import BufferStrategy, FrameBuffer
from ingest.engine import StreamMeta
from ingest.metrics import FRAMES_DROPPED, SOURCE_STATE
from ingest.runner import StreamIngester
from ingest.state import TRANSITIONS, SourceState, SourceStatus, TransitionError
from tests.ingest.helpers import make_hls, video

pytestmark = pytest.mark.timeout(120)


class SlowProducer:
    """Kafka that takes `delay` per record (a slow broker or scorer backpressure)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.sent: list[bytes] = []

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        await asyncio.sleep(self.delay)
        self.sent.append(value)


async def test_drop_oldest_keeps_the_newest_and_counts() -> None:
    buf = FrameBuffer(3, BufferStrategy.DROP_OLDEST, asyncio.get_running_loop())
    before = FRAMES_DROPPED.labels(strategy="drop_oldest")._value.get()
    for i in range(10):
        buf.put(i)
    buf.put_control("end")
    got = [await buf.get() for _ in range(4)]
    assert got == [7, 8, 9, "end"] and buf.dropped == 7
    assert FRAMES_DROPPED.labels(strategy="drop_oldest")._value.get() == before + 7


async def test_wait_loses_nothing_and_keeps_order() -> None:
    buf = FrameBuffer(2, BufferStrategy.WAIT, asyncio.get_running_loop())
    producer = threading.Thread(target=lambda: [buf.put(i) for i in range(20)])
    producer.start()
    got = []
    for _ in range(20):
        got.append(await buf.get())
        await asyncio.sleep(0.005)
    producer.join(5)
    assert got == list(range(20)) and buf.dropped == 0


async def test_a_live_pull_behind_a_slow_consumer_drops_stale_samples(
    make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    make_hls(video("doorknob-hd-no-bar.mp4"), tmp_path / "hls")
    app = web.Application()
    app.router.add_static("/hls/", tmp_path / "hls")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    settings: Settings = make_settings(
        ingest={
            "allow_private_urls": True,
            "reconnect_on_end": False,
            "queue_size": 2,
            "dedup_max_distance": -1,
        }
    )
    slow = SlowProducer(0.3)
    ing = StreamIngester(
        settings, f"http://127.0.0.1:{port}/hls/live.m3u8", StreamMeta("slow-live", "a"),
        fps=10, producer=slow,  # type: ignore[arg-type]
    )  # fmt: skip
    try:
        summary = await ing.run()
    finally:
        await runner.cleanup()
    assert summary.dropped > 0  # stale samples were dropped, not queued behind the consumer
    assert summary.sent + summary.dropped == summary.sampled
    assert summary.state == "ended"


async def test_a_file_behind_a_slow_consumer_waits_and_loses_nothing(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings(ingest={"queue_size": 2, "dedup_max_distance": -1})
    slow = SlowProducer(0.05)
    ing = StreamIngester(
        settings, video("doorknob-hd-no-bar.mp4"), StreamMeta("slow-file", "a"), fps=10,
        producer=slow,  # type: ignore[arg-type]
    )  # fmt: skip
    summary = await ing.run()
    assert summary.dropped == 0 and summary.sent == summary.sampled == len(slow.sent) > 20


def test_state_transitions() -> None:
    s = SourceStatus("st-1")
    assert s.state is SourceState.CONNECTING
    for new in (SourceState.LIVE, SourceState.STALLED, SourceState.LIVE,
                SourceState.RECONNECTING, SourceState.LIVE, SourceState.ENDED):  # fmt: skip
        s.to(new)
    assert s.final
    with pytest.raises(TransitionError, match="ended -> live"):
        s.to(SourceState.LIVE)
    assert SOURCE_STATE.labels(tenant="default", stream_id="st-1", state="ended")._value.get() == 1
    assert SOURCE_STATE.labels(tenant="default", stream_id="st-1", state="live")._value.get() == 0
    with pytest.raises(TransitionError):
        SourceStatus("st-2").to(SourceState.STALLED)  # nothing to stall before it is live
    assert all(not TRANSITIONS[f] for f in (SourceState.ENDED, SourceState.FAILED))


async def test_sources_list_shows_the_state_serve_reports(make_settings) -> None:  # type: ignore[no-untyped-def]
    from framewatch import kafkaio, redisio
    from ingest import registry

    settings: Settings = make_settings()
    await kafkaio.create_topics(settings)
    sync = redisio.sync_client(settings)
    registry.add(settings, sync, registry.SourceEntry(video("doorknob-hd-no-bar.mp4"), "rep", "a"))
    producer = kafkaio.producer(settings)
    await producer.start()
    client = redisio.async_client(settings)
    sup = registry.Supervisor(settings, producer, client)
    try:
        await sup.sync_once()
        _entry, _ing, task = sup.running["default/rep"]
        await asyncio.wait_for(task, 60)  # the file is read to its end
        await sup.publish_states()
        rows = registry.list_with_state(settings, sync)
    finally:
        for sid in list(sup.running):
            await sup._stop(sid)
        await client.aclose()
        await producer.stop()
    assert rows[0]["stream_id"] == "rep" and rows[0]["state"] == "ended" and rows[0]["sent"] > 0


def _to_ts(src: str, dst: Path) -> Path:
    import av

    with av.open(src) as inp, av.open(str(dst), "w", format="mpegts") as out:
        ins = inp.streams.video[0]
        outs = out.add_stream_from_template(ins)
        for packet in inp.demux(ins):
            if packet.dts is not None:
                packet.stream = outs
                out.mux(packet)
    return dst


async def test_a_live_source_that_goes_silent_is_stalled_then_reconnects_and_is_live_again(
    make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from devkit.faults.stack import LiveTs

    live = LiveTs(_to_ts(video("doorknob-hd-no-bar.mp4"), tmp_path / "live.ts"))
    await live.start()
    settings: Settings = make_settings(
        ingest={
            "allow_private_urls": True,
            "read_timeout_s": 3,
            "open_timeout_s": 3,
            "stall_s": 1,
            "reconnect_initial_s": 0.2,
            "dedup_max_distance": -1,
        }
    )
    slow = SlowProducer(0.0)
    ing = StreamIngester(settings, live.url, StreamMeta("stall", "a"), fps=2, producer=slow)  # type: ignore[arg-type]
    task = asyncio.create_task(ing.run())
    seen: list[str] = []

    async def until(cond, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
        end = asyncio.get_running_loop().time() + timeout
        while not cond():
            if not seen or seen[-1] != ing.status.state.value:
                seen.append(ing.status.state.value)
            assert asyncio.get_running_loop().time() < end, seen
            await asyncio.sleep(0.05)

    try:
        await until(lambda: len(slow.sent) >= 3)
        live.paused.clear()  # the source goes silent
        await until(lambda: ing.status.state is SourceState.RECONNECTING)
        live.paused.set()
        before = len(slow.sent)
        await until(lambda: len(slow.sent) > before + 2)
        await until(lambda: ing.status.state is SourceState.LIVE)
    finally:
        ing.stop()
        await asyncio.wait_for(task, 30)
        await live.close()
    assert seen[:3] == ["connecting", "live", "stalled"] and seen[-1] == "live"
    assert seen.index("stalled") < seen.index("reconnecting") < len(seen) - 1
    assert ing.status.state is SourceState.ENDED  # stopped by the operator
