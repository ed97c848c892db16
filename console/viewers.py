"""Viewer counts of live streams, reported by the tenant's platform, for the queue's order.

framewatch's ingest does not see an audience (it pulls or receives the stream, it does not serve
it), so the platform reports it: ``PUT /v1/streams/{stream_id}/viewers`` with the tenant's API
key. A count lives in Redis in the tenant's hash (``console:viewers:TENANT``, field = stream,
value = count and time) and counts for ``viewers_ttl_s``, so a stream that stops being reported
falls back to no audience; every console replica reads them every ``viewers_refresh_s``.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field

from framewatch import redisio
from framewatch.settings import Settings


class ViewersIn(BaseModel):
    """The body of ``PUT /v1/streams/{stream_id}/viewers``."""

    model_config = ConfigDict(extra="forbid")
    viewers: int = Field(ge=0, le=10**10, description="people watching the stream now")


class Viewers:
    def __init__(self, settings: Settings, redis: aioredis.Redis) -> None:
        self.s = settings
        self.r = redis

    def _key(self, tenant: str) -> str:
        return redisio.key(self.s, "console", "viewers", tenant)

    async def report(self, tenant: str, stream_id: str, viewers: int, now: float) -> None:
        """Store the count with its time (a hash per tenant: field = stream)."""
        await self.r.hset(self._key(tenant), stream_id, f"{viewers}:{now:.3f}")

    async def all(self, now: float) -> dict[tuple[str, str], int]:
        """Every count younger than ``viewers_ttl_s``, by (tenant, stream); older ones go."""
        prefix = self._key("")
        ttl = self.s.console.viewers_ttl_s
        out: dict[tuple[str, str], int] = {}
        async for k in self.r.scan_iter(match=prefix + "*", count=1000):
            key = k.decode() if isinstance(k, bytes) else k
            tenant, stale = key[len(prefix) :], []
            for field, raw in (await self.r.hgetall(key)).items():
                stream = field.decode() if isinstance(field, bytes) else field
                count, _, at = (raw.decode() if isinstance(raw, bytes) else raw).partition(":")
                if now - float(at or 0) > ttl:
                    stale.append(stream)
                else:
                    out[(tenant, stream)] = int(count)
            if stale:
                await self.r.hdel(key, *stale)
        return out
