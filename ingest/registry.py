"""Pulls registered in Redis (`framewatch sources ...`), and the supervisor that runs them.

The registry is one Redis hash, ``key(settings, "sources")``: ``scope.key(tenant, stream_id)``
-> JSON entry, so two tenants may both register a ``cam-1``. The
supervisor in ``framewatch ingest serve`` re-reads it every ``supervisor_poll_s`` and starts,
restarts (entry changed, or it failed) and stops pulls to match.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import asdict, dataclass

import redis
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from framewatch import redisio, scope
from framewatch.settings import Settings
from ingest.engine import StreamMeta
from ingest.runner import StreamIngester
from ingest.source import is_live
from ingest.ssrf import check_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceEntry:
    source: str
    stream_id: str
    account_id: str
    tenant: str = "default"
    channel: str | None = None
    fps: float | None = None
    keyframes: bool = False

    @property
    def key(self) -> str:
        """Its field in the registry hash, and its name in the supervisor."""
        return scope.key(self.tenant, self.stream_id)


def _hash(settings: Settings) -> str:
    return redisio.key(settings, "sources")


def add(settings: Settings, client: redis.Redis, entry: SourceEntry) -> None:
    """Register (or replace) the tenant's pull; URLs are checked against the SSRF guard first."""
    if is_live(entry.source):
        check_url(entry.source, allow_private=settings.ingest.allow_private_urls)
    client.hset(_hash(settings), entry.key, json.dumps(asdict(entry)))


def remove(settings: Settings, client: redis.Redis, tenant: str, stream_id: str) -> bool:
    return bool(client.hdel(_hash(settings), scope.key(tenant, stream_id)))


def list_all(settings: Settings, client: redis.Redis) -> list[SourceEntry]:
    raw = client.hgetall(_hash(settings))
    return sorted(
        (SourceEntry(**json.loads(v)) for v in raw.values()),  # type: ignore[union-attr]
        key=lambda e: (e.tenant, e.stream_id),
    )


def _report(task: asyncio.Task[object]) -> None:
    """A finished pull stays finished (files end; fatal errors were dead-lettered): say so."""
    if task.cancelled():
        return
    if task.exception() is not None:
        log.error("%s failed: %s", task.get_name(), task.exception())
    else:
        log.info("%s ended: %s", task.get_name(), task.result())


class Supervisor:
    """Keeps one StreamIngester running per registered source."""

    def __init__(
        self, settings: Settings, producer: AIOKafkaProducer, client: aioredis.Redis
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.client = client
        self.running: dict[str, tuple[SourceEntry, StreamIngester, asyncio.Task[object]]] = {}

    async def _wanted(self) -> dict[str, SourceEntry]:
        raw = await self.client.hgetall(_hash(self.settings))
        out = {}
        for k, v in raw.items():
            try:
                out[k.decode() if isinstance(k, bytes) else k] = SourceEntry(**json.loads(v))
            except (ValueError, TypeError) as exc:
                log.error("registry entry %r is malformed (%s); remove and re-add it", k, exc)
        return out

    def _start(self, entry: SourceEntry) -> None:
        ing = StreamIngester(
            self.settings,
            entry.source,
            StreamMeta(entry.stream_id, entry.account_id, entry.tenant, entry.channel),
            fps=entry.fps,
            keyframes_only=entry.keyframes,
            producer=self.producer,
        )
        task = asyncio.create_task(ing.run(), name=f"pull-{entry.key}")
        task.add_done_callback(_report)
        self.running[entry.key] = (entry, ing, task)
        log.info("started pull %s from %s", entry.key, entry.source)

    async def _stop(self, stream_id: str) -> None:
        _entry, ing, task = self.running.pop(stream_id)
        ing.stop()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(task, self.settings.ingest.read_timeout_s + 5)
        log.info("stopped pull %s", stream_id)

    async def sync_once(self) -> None:
        wanted = await self._wanted()
        for sid in list(self.running):
            entry, _ing, _task = self.running[sid]
            if sid not in wanted or wanted[sid] != entry:
                await self._stop(sid)
        for sid, entry in wanted.items():
            if sid not in self.running:
                self._start(entry)

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.sync_once()
                except (redis.RedisError, OSError) as exc:
                    log.warning("supervisor cannot read the registry: %s", exc)
                await asyncio.sleep(self.settings.ingest.supervisor_poll_s)
        finally:
            for sid in list(self.running):
                await self._stop(sid)
