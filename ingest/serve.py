"""`framewatch ingest serve`: the push API, the pull supervisor and (optionally) RTMP listeners."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiohttp import web

from framewatch import kafkaio, metrics, redisio
from framewatch.settings import Settings
from framewatch.tasks import cancel_and_wait
from ingest import metrics as ingest_metrics
from ingest.api import make_app
from ingest.registry import Supervisor

log = logging.getLogger(__name__)


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or `stop` is set)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(RuntimeError, ValueError):  # not the main thread (tests)
            loop.add_signal_handler(sig, stop.set)
    if settings.metrics.enabled:
        metrics.serve(
            "ingest", settings.metrics.host, settings.metrics.ingest_port, settings.metrics.port_dir
        )
        ingest_metrics.init_series(
            settings.topics.name("frames"), settings.metrics.max_stream_series
        )
    producer = kafkaio.producer(settings)
    await producer.start()
    client = redisio.async_client(settings)
    runner = web.AppRunner(make_app(settings, producer, client))
    await runner.setup()
    site = web.TCPSite(runner, settings.ingest.http_host, settings.ingest.http_port)
    await site.start()
    log.info(
        "push API on http://%s:%d (OpenAPI at /openapi.json)",
        settings.ingest.http_host,
        settings.ingest.http_port,
    )
    tasks = [asyncio.create_task(Supervisor(settings, producer, client).run())]
    if settings.ingest.rtmp_port:
        from ingest.rtmp import RtmpListener

        tasks.append(asyncio.create_task(RtmpListener(settings, producer, client).run()))
    try:
        await stop.wait()
    finally:
        await cancel_and_wait(tasks, what="listener")
        await runner.cleanup()
        await client.aclose()
        await producer.stop()
