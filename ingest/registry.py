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
from framewatch.redact import mask_url
from framewatch.settings import Settings
from ingest import egress
from ingest.engine import StreamMeta
from ingest.metrics import STREAMS
from ingest.runner import StreamIngester
from ingest.source import is_live

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
        egress.check(entry.source, allow_private=settings.ingest.allow_private_urls)
    client.hset(_hash(settings), entry.key, json.dumps(asdict(entry)))


def remove(settings: Settings, client: redis.Redis, tenant: str, stream_id: str) -> bool:
    return bool(client.hdel(_hash(settings), scope.key(tenant, stream_id)))


def list_all(settings: Settings, client: redis.Redis) -> list[SourceEntry]:
    raw = client.hgetall(_hash(settings))
    return sorted(
        (SourceEntry(**json.loads(v)) for v in raw.values()),  # type: ignore[union-attr]
        key=lambda e: (e.tenant, e.stream_id),
    )


def _state_key(settings: Settings, entry_key: str) -> str:
    """Where `ingest serve` reports a pull's state; ``entry_key`` is ``SourceEntry.key``."""
    return redisio.key(settings, "sourcestate", entry_key)


def list_with_state(settings: Settings, client: redis.Redis) -> list[dict[str, object]]:
    """Registered pulls, URLs masked, with the state `ingest serve` last reported for each
    ('unknown' when no server reports it: it is not running, or not for this long)."""
    entries = list_all(settings, client)
    raw = client.mget([_state_key(settings, e.key) for e in entries]) if entries else []
    out = []
    for e, r in zip(entries, raw, strict=True):  # type: ignore[arg-type]
        reported = json.loads(r) if r else {"state": "unknown"}
        out.append({**asdict(e), "source": mask_url(e.source), **reported})
    return out


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
        log.info("started pull %s from %s", entry.key, mask_url(entry.source))

    async def _stop(self, key: str) -> None:
        entry, ing, task = self.running.pop(key)
        ing.stop()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            async with asyncio.timeout(self.settings.ingest.read_timeout_s + 5):
                await task
        STREAMS.forget(entry.tenant, entry.stream_id)  # unregistered: none of its series stay
        with contextlib.suppress(redis.RedisError, OSError):
            await self.client.delete(_state_key(self.settings, key))
        log.info("stopped pull %s", key)

    async def sync_once(self) -> None:
        wanted = await self._wanted()
        for sid in list(self.running):
            entry, _ing, _task = self.running[sid]
            if sid not in wanted or wanted[sid] != entry:
                await self._stop(sid)
        for sid, entry in wanted.items():
            if sid not in self.running:
                self._start(entry)

    async def publish_states(self) -> None:
        """Each running pull's state for `sources list` (expires when no server renews it)."""
        ttl = max(10, int(self.settings.ingest.supervisor_poll_s * 3))
        async with self.client.pipeline(transaction=False) as pipe:
            for sid, (_entry, ing, _task) in self.running.items():
                s = ing.summary(0.0)
                report = {"state": s.state, "since": round(ing.status.since, 3),
                          "sent": s.sent, "dropped": s.dropped, "reconnects": s.reconnects}  # fmt: skip
                pipe.set(_state_key(self.settings, sid), json.dumps(report), ex=ttl)
            await pipe.execute()

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.sync_once()
                    await self.publish_states()
                except (redis.RedisError, OSError) as exc:
                    log.warning("supervisor cannot read the registry: %s", exc)
                await asyncio.sleep(self.settings.ingest.supervisor_poll_s)
        finally:
            for sid in list(self.running):
                await self._stop(sid)
