"""RTMP listen endpoint: platforms publish to ``rtmp://HOST:PORT/live/<stream_key>``.

FFmpeg's RTMP server (``listen=1``) accepts any publish name and only logs it ("Unexpected stream
KEY, expecting _"), so the key is read from that log line, captured for the accepting thread.
The key maps to (tenant, account_id, stream_id) via Redis ``key(settings, "streamkey", KEY)``;
unknown keys are dropped. One FFmpeg listener takes one publisher at a time: a port serves
streams one after another (run more `ingest serve` processes, or an RTMP server in front and
`framewatch sources add`, for many concurrent publishers).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import threading

import av
import av.logging
import redis
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from framewatch import deadletter, redisio
from framewatch.settings import Settings
from ingest.engine import StreamMeta
from ingest.errors import IngestError, SourceError
from ingest.metrics import SOURCE_ERRORS
from ingest.runner import StreamIngester
from ingest.source import VideoSource

log = logging.getLogger(__name__)

_PLACEHOLDER = "_"
_KEY_RE = re.compile(r"Unexpected stream (\S+), expecting")


def create_key(
    settings: Settings, client: redis.Redis, tenant: str, account_id: str, stream_id: str
) -> str:
    """A new stream key for a publisher (printed once by `framewatch sources key`); it names
    the tenant, so the stream is that tenant's `stream_id` (``framewatch.scope``)."""
    key = secrets.token_urlsafe(24)
    entry = {"tenant": tenant, "account_id": account_id, "stream_id": stream_id}
    client.set(redisio.key(settings, "streamkey", key), json.dumps(entry))
    return key


def key_from_logs(logs: list[tuple[int, str, str]]) -> str | None:
    for _level, _name, message in logs:
        if m := _KEY_RE.search(message):
            return m.group(1)
    return None


class RtmpListener:
    """Accept publishers one at a time and ingest each like a live pull."""

    def __init__(
        self, settings: Settings, producer: AIOKafkaProducer, client: aioredis.Redis
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.client = client
        cfg = settings.ingest
        self.url = f"rtmp://{cfg.rtmp_host}:{cfg.rtmp_port}/live/{_PLACEHOLDER}"

    def _accept(self) -> tuple[av.container.InputContainer, str | None]:
        av.logging.set_level(av.logging.WARNING)
        with av.logging.Capture() as logs:
            container = av.open(
                self.url,
                options={"listen": "1"},
                timeout=(86400.0, self.settings.ingest.read_timeout_s),
            )
        return container, key_from_logs(logs)

    async def _accept_in_daemon_thread(self) -> tuple[av.container.InputContainer, str | None]:
        """Accept in a daemon thread: a listener blocked in accept must not hold up exit."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[av.container.InputContainer, str | None]] = loop.create_future()

        def work() -> None:
            try:
                result = self._accept()
            except BaseException as exc:  # handed to the awaiting task
                err = exc
                loop.call_soon_threadsafe(
                    lambda: fut.done() or fut.set_exception(err)  # type: ignore[func-returns-value]
                )
            else:
                loop.call_soon_threadsafe(
                    lambda: fut.done() or fut.set_result(result)  # type: ignore[func-returns-value]
                )

        threading.Thread(target=work, name="rtmp-accept", daemon=True).start()
        return await fut

    async def run(self) -> None:
        log.info("RTMP listener on %s (publish to .../live/<stream_key>)", self.url[:-2])
        while True:
            try:
                container, key = await self._accept_in_daemon_thread()
            except (av.error.FFmpegError, OSError) as exc:
                log.warning("RTMP accept failed: %s", exc)
                await asyncio.sleep(0.5)
                continue
            raw = (
                await self.client.get(redisio.key(self.settings, "streamkey", key)) if key else None
            )
            if raw is None:
                container.close()
                SOURCE_ERRORS.labels(reason="unknown_stream_key").inc()
                log.warning("RTMP publisher with unknown stream key %r refused", key)
                continue
            entry = json.loads(raw)
            meta = StreamMeta(
                entry["stream_id"], entry["account_id"], entry.get("tenant", "default")
            )
            src = VideoSource(
                f"rtmp://listener/{meta.stream_id}", container=container, end_on_read_error=True
            )
            ing = StreamIngester(
                self.settings, src.source, meta, producer=self.producer, opened=src
            )
            try:
                summary = await ing.run()
                log.info("RTMP stream %s ended: %s", meta.stream_id, summary)
            except SourceError as exc:  # already dead-lettered by the runner
                log.error("RTMP stream %s failed: %s", meta.stream_id, exc)
            except IngestError as exc:
                await deadletter.send(
                    self.producer,
                    self.settings,
                    deadletter.build("ingest", "rtmp_failed", str(exc)),
                )
