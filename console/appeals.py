"""User appeals: ``POST /v1/appeals`` (tenant API key) and their state in Redis.

One appeal per decision (its id is derived from tenant + decision, so a re-post returns the
same appeal). It waits in the appeal queue until a reviewer other than the decision's earlier
reviewers decides it; the verdict travels as a ReviewOutcome on the reviews topic like any
other, so an overturned block gets its corrected statement from the streams worker.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field

from framewatch import records, redisio
from framewatch.settings import Settings


class AppealIn(BaseModel):
    """The body of ``POST /v1/appeals``."""

    model_config = ConfigDict(extra="forbid")
    decision_id: str = Field(min_length=1, max_length=100)
    reason: str = Field("", max_length=2000, description="the user's statement")
    contact: str | None = Field(None, max_length=200, description="where to tell the user")


def appeal_id(tenant: str, decision_id: str) -> str:
    return records.stable_id("appeal", tenant, decision_id)


class Appeals:
    def __init__(self, settings: Settings, redis: aioredis.Redis) -> None:
        self.s = settings
        self.r = redis

    def _key(self, tenant: str) -> str:
        return redisio.key(self.s, "console", "appeals", tenant)

    async def file(self, tenant: str, body: AppealIn) -> tuple[dict[str, Any], bool]:
        """Store the appeal; returns it and whether it is new."""
        aid = appeal_id(tenant, body.decision_id)
        appeal = {"appeal_id": aid, "tenant": tenant, "decision_id": body.decision_id,
                  "reason": body.reason, "contact": body.contact, "status": "pending",
                  "created_at": round(time.time(), 3)}  # fmt: skip
        new = bool(await self.r.hsetnx(self._key(tenant), aid, json.dumps(appeal)))
        return (appeal if new else await self.get(tenant, aid) or appeal), new

    async def get(self, tenant: str, aid: str) -> dict[str, Any] | None:
        raw = await self.r.hget(self._key(tenant), aid)
        return json.loads(raw) if raw else None

    async def all(self, tenants: set[str] | None) -> list[dict[str, Any]]:
        if tenants is None:
            keys = [k async for k in self.r.scan_iter(match=self._key("*"), count=500)]
        else:
            keys = [self._key(t) for t in sorted(tenants)]
        out: list[dict[str, Any]] = []
        for k in keys:
            out.extend(json.loads(v) for v in (await self.r.hgetall(k)).values())
        return out

    async def forget(self, tenant: str, decision_ids: list[str]) -> int:
        """Erase the appeals (the user's statement and contact) against these decisions."""
        ids = [appeal_id(tenant, d) for d in decision_ids]
        return int(await self.r.hdel(self._key(tenant), *ids)) if ids else 0

    async def decide(self, tenant: str, aid: str, outcome: str, reviewer: str) -> None:
        a = await self.get(tenant, aid)
        if a is None:
            return
        a.update(status="decided", outcome=outcome, decided_by=reviewer,
                 decided_at=round(time.time(), 3))  # fmt: skip
        await self.r.hset(self._key(tenant), aid, json.dumps(a))
