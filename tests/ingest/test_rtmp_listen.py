"""RTMP publish (PyAV in another process) to the listen endpoint; the stream key picks the stream."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from framewatch import kafkaio, redisio
from framewatch.local import free_port
from framewatch.settings import Settings
from ingest import rtmp
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
    key = rtmp.create_key(settings, redisio.sync_client(settings), "acme", "acct-r", "rtmp-cam")
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
