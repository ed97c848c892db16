"""Score cache in Redis: the same JPEG (static screens, re-streamed clips) is scored once.

Keyed by the tenant, sha256 of the JPEG bytes and a hash of the model set (name@version of
every model), so upgrading a model never serves stale scores, and one tenant's frames never
answer (or, by a hit's speed, reveal) another's: ``scope.key(tenant, digest)``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

import redis.asyncio as aioredis
from prometheus_client import Counter

from framewatch import records, redisio, scope
from framewatch.metrics import stage_registry
from framewatch.settings import Settings
from scoring.scorer import Scored

_REG = stage_registry("scoring")  # this stage's /metrics only (core metrics join there)

log = logging.getLogger(__name__)
CACHE = Counter("framewatch_scoring_cache_total", "score cache lookups", ["result"], registry=_REG)


class ScoreCache:
    def __init__(self, settings: Settings, model_set: str, client: aioredis.Redis) -> None:
        self.s = settings
        self.ttl = settings.scoring.score_cache_ttl_s
        self.version = hashlib.sha256(model_set.encode()).hexdigest()[:12]
        self.r = client
        self.pause_s = settings.scoring.score_cache_pause_s
        self._skip_until = 0.0  # after a Redis error, score without the cache for a while

    def _usable(self) -> bool:
        if not self.ttl:
            return False
        if time.monotonic() < self._skip_until:
            CACHE.labels(result="bypassed").inc()
            return False
        return True

    def _failed(self, e: Exception) -> None:
        """Redis down: go on without the cache for pause_s rather than wait on every frame."""
        log.warning("score cache unavailable, scoring without it for %gs: %s", self.pause_s, e)
        CACHE.labels(result="error").inc()
        self._skip_until = time.monotonic() + self.pause_s

    def key(self, tenant: str, jpeg: bytes) -> str:
        digest = hashlib.sha256(jpeg).hexdigest()
        return redisio.key(self.s, "scorecache", self.version, scope.key(tenant, digest))

    async def get(self, tenant: str, jpeg: bytes) -> tuple[Scored, str | None, int | None] | None:
        if not self._usable():
            return None
        try:
            raw = await self.r.get(self.key(tenant, jpeg))
        except Exception as e:  # the cache is an optimisation: Redis down means score anyway
            self._failed(e)
            return None
        if raw is None:
            CACHE.labels(result="miss").inc()
            return None
        CACHE.labels(result="hit").inc()
        d = json.loads(raw)
        scored = Scored(
            scores=d["scores"],
            models=d["models"],
            detections=[records.Detection.model_validate(x) for x in d["detections"]],
        )
        return scored, d["pdq"], d["pdq_quality"]

    async def put(
        self, tenant: str, jpeg: bytes, s: Scored, pdq_hex: str | None, quality: int | None
    ) -> None:
        if not self._usable():
            return
        body = json.dumps({"scores": s.scores, "models": s.models, "pdq": pdq_hex,
                           "pdq_quality": quality,
                           "detections": [d.model_dump(mode="json") for d in s.detections]})  # fmt: skip
        try:
            await self.r.set(self.key(tenant, jpeg), body, ex=self.ttl)
        except Exception as e:
            self._failed(e)
