"""RTMP publish (PyAV in another process) to the listen endpoint; the stream key picks the
stream, several publishers are taken at once, an idle socket holds nothing, a wrong key is
refused before decoding, and only digests of stream keys are in Redis."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from framewatch import kafkaio, redisio
from framewatch.local import free_port
from framewatch.settings import Settings
from ingest import rtmp, streamkeys
from ingest.metrics import FRAMES_DECODED, RTMP_REFUSED
from tests.ingest.helpers import consume, video

pytestmark = pytest.mark.timeout(90)

PUBLISH = """
import sys, av
src, url = sys.argv[1], sys.argv[2]
with av.open(src) as inp, av.open(url, "w", format="flv", timeout=10) as out:
    ins = inp.streams.video[0]
    outs = out.add_stream_from_template(ins)
    for packet in inp.demux(ins):
        if packet.dts is None:
            continue
        packet.stream = outs
        out.mux(packet)
"""


def publish(url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", PUBLISH, video("doorknob-hd-no-bar.mp4"), url])


async def test_rtmp_publish_lands_under_the_keys_stream(make_settings) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    settings: Settings = make_settings(ingest={"rtmp_port": port, "dedup_max_distance": -1})
    await kafkaio.create_topics(settings)
    key = streamkeys.create_key(
        settings, redisio.sync_client(settings), "acme", "acct-r", "rtmp-cam"
    )
    producer = kafkaio.producer(settings)
    await producer.start()
    client = redisio.async_client(settings)
    listener = asyncio.create_task(rtmp.RtmpListener(settings, producer, client).run())
    try:
        await asyncio.sleep(0.5)
        pub = publish(f"rtmp://127.0.0.1:{port}/live/{key}")
        assert await asyncio.to_thread(pub.wait, 30) == 0
        frames = await consume(settings, "frames", 4, timeout=20)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await client.aclose()
        await producer.stop()
    assert len(frames) >= 4  # 4.3 s at 1 fps
    assert {(f.stream_id, f.account_id, f.tenant) for f in frames} == {
        ("rtmp-cam", "acct-r", "acme")
    }
    assert [f.seq for f in frames] == list(range(len(frames)))


async def _listener(settings: Settings):  # type: ignore[no-untyped-def]
    await kafkaio.create_topics(settings)
    producer = kafkaio.producer(settings)
    await producer.start()
    client = redisio.async_client(settings)
    task = asyncio.create_task(rtmp.RtmpListener(settings, producer, client).run())
    await asyncio.sleep(0.5)

    async def stop() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
        await producer.stop()

    return stop


async def test_an_idle_connection_does_not_block_a_publisher(make_settings) -> None:  # type: ignore[no-untyped-def]
    """Before: FFmpeg's one listener took the idle socket and waited for it; no publisher got in."""
    port = free_port()
    settings: Settings = make_settings(
        ingest={"rtmp_port": port, "dedup_max_distance": -1, "rtmp_handshake_timeout_s": 60}
    )
    key = streamkeys.create_key(settings, redisio.sync_client(settings), "acme", "a", "busy-cam")
    stop = await _listener(settings)
    _idle_r, idle_w = await asyncio.open_connection("127.0.0.1", port)  # sends nothing
    try:
        pub = publish(f"rtmp://127.0.0.1:{port}/live/{key}")
        assert await asyncio.to_thread(pub.wait, 45) == 0
        frames = await consume(settings, "frames", 4, timeout=20)
    finally:
        idle_w.close()
        await stop()
    assert len(frames) >= 4 and {f.stream_id for f in frames} == {"busy-cam"}


async def test_a_wrong_key_is_refused_before_decoding(make_settings) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    settings: Settings = make_settings(ingest={"rtmp_port": port})
    streamkeys.create_key(settings, redisio.sync_client(settings), "acme", "a", "real-cam")
    refused = RTMP_REFUSED.labels(reason="bad_key")._value.get()
    decoded = sum(m.value for m in FRAMES_DECODED.collect()[0].samples if m.name.endswith("_total"))
    stop = await _listener(settings)
    try:
        pub = publish(f"rtmp://127.0.0.1:{port}/live/not-a-key")
        assert await asyncio.to_thread(pub.wait, 45) != 0  # the publisher is hung up on
        frames = await consume(settings, "frames", 1, timeout=3)
    finally:
        await stop()
    assert frames == []
    assert RTMP_REFUSED.labels(reason="bad_key")._value.get() == refused + 1
    after = sum(m.value for m in FRAMES_DECODED.collect()[0].samples if m.name.endswith("_total"))
    assert after == decoded  # not one frame of it was decoded


def test_stream_keys_are_stored_as_digests(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings()
    client = redisio.sync_client(settings)
    key = streamkeys.create_key(settings, client, "acme", "a", "digest-cam")
    stored = [k.decode() for k in client.scan_iter(match=redisio.key(settings, "streamkey", "*"))]
    assert stored and all(key not in k for k in stored)
    assert all(key not in (client.get(k) or b"").decode() for k in stored)


async def test_a_clear_key_of_an_older_version_still_works_and_moves_to_its_digest(
    make_settings,
) -> None:  # type: ignore[no-untyped-def]
    import json

    settings: Settings = make_settings()
    client = redisio.async_client(settings)
    legacy = redisio.key(settings, "streamkey", "old-clear-key")
    await client.set(legacy, json.dumps({"tenant": "t", "account_id": "a", "stream_id": "s"}))
    try:
        entry = await streamkeys.lookup(settings, client, "old-clear-key")
        assert entry is not None and entry["stream_id"] == "s"
        assert await client.get(legacy) is None  # the clear key is gone
        assert (await streamkeys.lookup(settings, client, "old-clear-key")) == entry
        assert await streamkeys.lookup(settings, client, "wrong") is None
    finally:
        await client.aclose()


async def test_two_publishers_at_once(make_settings) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    settings: Settings = make_settings(ingest={"rtmp_port": port, "dedup_max_distance": -1})
    sync = redisio.sync_client(settings)
    keys = [streamkeys.create_key(settings, sync, "acme", "a", f"cam-{i}") for i in (1, 2)]
    stop = await _listener(settings)
    try:
        pubs = [publish(f"rtmp://127.0.0.1:{port}/live/{k}") for k in keys]
        assert [await asyncio.to_thread(p.wait, 45) for p in pubs] == [0, 0]
        frames = await consume(settings, "frames", 8, timeout=20)
    finally:
        await stop()
    by_stream = {s: [f for f in frames if f.stream_id == s] for s in ("cam-1", "cam-2")}
    assert all(len(v) >= 4 for v in by_stream.values())
