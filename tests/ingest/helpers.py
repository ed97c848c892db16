"""Shared helpers of the ingest tests: test data paths and reading the frames topic."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import av
from aiohttp import web

from devkit.testdata import testdata_dir
from framewatch import kafkaio, records, redisio
from framewatch.settings import Settings

TESTDATA = testdata_dir()
VIDEOS = TESTDATA / "videos"
VPDQ = TESTDATA / "vpdq"


def self_signed(folder: Path, host: str = "localhost") -> tuple[ssl.SSLContext, Path]:
    """A self-signed certificate for ``host`` made with the openssl command: the server's TLS
    context and the certificate (PEM), which is its own CA."""
    if shutil.which("openssl") is None:
        import pytest

        pytest.skip("needs the openssl command")
    folder.mkdir(parents=True, exist_ok=True)
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         f"/CN={host}", "-addext", f"subjectAltName=DNS:{host}", "-keyout", str(key),
         "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx, cert


def video(name: str) -> str:
    return str((VIDEOS / name).resolve())


def make_hls(src: str, folder: Path) -> Path:
    """Remux a test video into an HLS VOD playlist with ~1 s segments."""
    folder.mkdir(parents=True, exist_ok=True)
    playlist = folder / "live.m3u8"
    with (
        av.open(src) as inp,
        av.open(
            str(playlist), "w", format="hls", options={"hls_time": "1", "hls_list_size": "0"}
        ) as out,
    ):
        ins = inp.streams.video[0]
        outs = out.add_stream_from_template(ins)
        for packet in inp.demux(ins):
            if packet.dts is None:
                continue
            packet.stream = outs
            out.mux(packet)
    return playlist


async def consume(
    settings: Settings,
    key: str,
    n: int,
    timeout: float = 20.0,
    done: Callable[[list[Any]], bool] | None = None,
) -> list[object]:
    """Read up to n records of topic `key` (frames/dead_letters) from the start, or until
    ``done(records so far)``."""
    c = kafkaio.consumer(
        settings,
        settings.topics.name(key),
        group_id=f"test-{settings.topics.name(key)}",  # one group a test: no rebalance by others
        auto_offset_reset="earliest",
    )
    await c.start()
    out: list[object] = []
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while len(out) < n and loop.time() < end and not (done and done(out)):
            batch = await c.getmany(timeout_ms=500)
            for msgs in batch.values():
                out.extend(records.decode(m.value) for m in msgs)
    finally:
        await c.stop()
    return out


@asynccontextmanager
async def push_server(settings: Settings) -> AsyncIterator[str]:
    """The real push API in this process, on a free port, with a real producer and Redis;
    yields its base URL."""
    from ingest.api import make_app

    producer = kafkaio.producer(settings)
    await producer.start()
    client = redisio.async_client(settings)
    runner = web.AppRunner(make_app(settings, producer, client))
    try:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
        await client.aclose()
        await producer.stop()
