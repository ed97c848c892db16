"""Live-style pulls: HLS made with PyAV and served by a real local HTTP server, reconnects,
a stream that never starts, the SSRF guard on the real path, and the CLI."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from framewatch import records
from framewatch.netguard import UrlRefusedError
from framewatch.settings import Settings
from ingest.engine import Counts, StreamMeta
from ingest.errors import SourceTimeoutError
from ingest.runner import StreamIngester
from tests.ingest.helpers import consume, make_hls, video

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def hls_url(tmp_path: Path) -> AsyncIterator[str]:
    make_hls(video("doorknob-hd-no-bar.mp4"), tmp_path / "hls")
    app = web.Application()
    app.router.add_static("/hls/", tmp_path / "hls")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/hls/live.m3u8"
    await runner.cleanup()


async def test_hls_pull_from_local_http_server(make_settings, hls_url: str) -> None:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings(
        ingest={"allow_private_urls": True, "reconnect_on_end": False}
    )
    from framewatch.kafkaio import create_topics

    await create_topics(settings)
    summary = await StreamIngester(settings, hls_url, StreamMeta("hls", "a")).run()
    # 4.3 s at 30 fps, every segment fetched over HTTP: the 66 of its 120 frames that other
    # frames refer to are decoded (ingest.decode_skip_nonref)
    assert summary.read >= 66
    assert 4 <= summary.sent <= 6
    frames = await consume(settings, "frames", summary.sent)
    assert [f.seq for f in frames] == list(range(summary.sent))


async def test_live_url_reconnects_after_the_stream_ends(make_settings, hls_url: str) -> None:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings(
        ingest={"allow_private_urls": True, "reconnect_initial_s": 0.1, "dedup_max_distance": -1}
    )
    from framewatch.kafkaio import create_topics

    await create_topics(settings)
    ing = StreamIngester(settings, hls_url, StreamMeta("again", "a"))

    def progress(c: Counts, lag: float) -> None:
        if c.reconnects >= 1 and c.sent >= 7:
            ing.stop()

    ing.on_progress = progress
    summary = await asyncio.wait_for(ing.run(), 60)
    assert summary.reconnects >= 1 and summary.sent >= 7
    frames = await consume(settings, "frames", summary.sent)
    assert [f.seq for f in frames] == list(range(summary.sent))
    pts = [f.pts for f in frames]
    assert pts == sorted(pts)  # the second connection continues the timeline


async def test_stream_that_never_starts_times_out_clearly(make_settings) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings: Settings = make_settings(
        ingest={"allow_private_urls": True, "open_timeout_s": 1.5, "reconnect_initial_s": 0.2}
    )
    from framewatch.kafkaio import create_topics

    await create_topics(settings)
    ing = StreamIngester(settings, f"rtmp://127.0.0.1:{port}/live/k", StreamMeta("never", "a"))
    with pytest.raises(SourceTimeoutError, match="did not start"):
        await asyncio.wait_for(ing.run(), 30)
    dead = await consume(settings, "dead_letters", 1, timeout=10)
    assert dead and dead[0].reason == "source_timeout" and dead[0].key == "default/never"


async def test_internal_url_refused_without_the_setting(settings: Settings) -> None:
    ing = StreamIngester(settings, "http://127.0.0.1:1/x.m3u8", StreamMeta("s", "a"))
    with pytest.raises(UrlRefusedError, match="internal"):
        await ing.run()


def test_cli_ingest_realtime_json(settings: Settings, kafka_topics: object, tmp_path: Path) -> None:
    env = {
        "FRAMEWATCH_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "FRAMEWATCH_REDIS_URL": settings.redis_url.get_secret_value(),
        "FRAMEWATCH_REDIS_PREFIX": settings.redis_prefix,
        "FRAMEWATCH_TOPICS__PREFIX": settings.topics.prefix,
        "PATH": str(Path(sys.executable).parent),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "framewatch.cli", "ingest", video("doorknob-hd-no-bar.mp4"),
         "--stream-id", "cli", "--account-id", "a", "--realtime", "--fps", "2", "--json"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["read"] >= 66 and 8 <= summary["sent"] <= 10  # 66 of 120: decode_skip_nonref
    assert summary["elapsed_s"] >= 3.5  # paced at the native frame rate, like live
    assert "sent" in proc.stderr and "lag" in proc.stderr
    frames = asyncio.run(consume(settings, "frames", summary["sent"]))
    assert all(isinstance(f, records.Frame) and f.stream_id == "cli" for f in frames)
    assert len(frames) == summary["sent"]


async def test_cli_missing_file_says_so_and_dead_letters(
    settings: Settings, kafka_topics: dict[str, str]
) -> None:
    env = {
        "FRAMEWATCH_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "FRAMEWATCH_REDIS_URL": settings.redis_url.get_secret_value(),
        "FRAMEWATCH_TOPICS__PREFIX": settings.topics.prefix,
        "PATH": "/usr/bin",
    }
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "framewatch.cli", "ingest", "/nonexistent.mp4",
         "--stream-id", "x", "--account-id", "a"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "no such file" in proc.stderr
    dead = await consume(settings, "dead_letters", 1)
    assert [d.payload for d in dead] == [b"/nonexistent.mp4"]  # type: ignore[attr-defined]
