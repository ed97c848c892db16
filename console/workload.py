"""Claims (one reviewer per item) and exposure counts (reviewer wellbeing), in Redis.

A claim is ``SET NX`` with a TTL, so two reviewers never hold the same item and a claim
left behind expires. An exposure is a sensitive item (red line, gore ...) a reviewer opened;
they are counted per reviewer per clock hour, and at the cap the queue stops handing that
reviewer such items.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from framewatch import redisio
from framewatch.settings import Settings


class Workload:
    def __init__(self, settings: Settings, redis: aioredis.Redis) -> None:
        self.s = settings
        self.r = redis

    def _ckey(self, tenant: str, item_id: str) -> str:
        return redisio.key(self.s, "console", "claim", tenant, item_id)

    async def claim(self, tenant: str, item_id: str, reviewer: str) -> str:
        """Claim the item; returns who holds it (this reviewer, or the one before)."""
        key = self._ckey(tenant, item_id)
        ttl = self.s.console.claim_ttl_s
        if await self.r.set(key, reviewer, nx=True, ex=ttl):
            return reviewer
        holder = (await self.r.get(key) or b"").decode()
        if holder == reviewer:
            await self.r.expire(key, ttl)
        return holder or reviewer

    async def holder(self, tenant: str, item_id: str) -> str | None:
        raw = await self.r.get(self._ckey(tenant, item_id))
        return raw.decode() if raw else None

    async def release(self, tenant: str, item_id: str) -> None:
        await self.r.delete(self._ckey(tenant, item_id))

    async def holders(self, tenant_items: list[tuple[str, str]]) -> list[str | None]:
        if not tenant_items:
            return []
        raw = await self.r.mget([self._ckey(t, i) for t, i in tenant_items])
        return [v.decode() if v else None for v in raw]

    def _ekey(self, reviewer: str, now: float) -> str:
        return redisio.key(self.s, "console", "exposure", reviewer, str(int(now // 3600)))

    async def expose(self, reviewer: str, item_id: str, now: float | None = None) -> int:
        """Count an opened sensitive item once per hour; returns this hour's count."""
        key = self._ekey(reviewer, time.time() if now is None else now)
        pipe = self.r.pipeline()
        pipe.sadd(key, item_id)
        pipe.expire(key, 7200)
        pipe.scard(key)
        return int((await pipe.execute())[2])

    async def exposures(self, reviewer: str, now: float | None = None) -> int:
        return int(await self.r.scard(self._ekey(reviewer, time.time() if now is None else now)))

    async def at_cap(self, reviewer: str) -> bool:
        return await self.exposures(reviewer) >= self.s.console.exposure_cap_per_hour
