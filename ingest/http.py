"""What the ingest HTTP routes share: app keys, the error body, authentication, Redis-down.

Both route modules (``ingest/push.py``, ``ingest/sources_api.py``) import what they share from
here (app keys, the error body, authentication, the Redis-down middleware); ``ingest/api.py``
assembles the app. No circle: http <- push, sources_api <- api.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis
import redis.asyncio as aioredis
from aiohttp import web
from aiokafka import AIOKafkaProducer

from framewatch import apikeys
from framewatch.settings import Settings
from ingest.metrics import PUSH_REQUESTS

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
PRODUCER = web.AppKey("producer", AIOKafkaProducer)
REDIS = web.AppKey("redis", aioredis.Redis)
DECODES = web.AppKey("decodes", asyncio.Semaphore)


def error(status: int, code: str, message: str) -> web.Response:
    PUSH_REQUESTS.labels(status=str(status)).inc()
    return web.json_response({"error": code, "message": message}, status=status)


async def authenticate(request: web.Request) -> str | web.Response:
    """The caller's tenant, or the 401 response to send."""
    key = apikeys.bearer(request.headers.get("Authorization"))
    if key is None:
        return error(
            401, "unauthorized", "send the tenant's API key as 'Authorization: Bearer KEY'"
        )
    tenant = await apikeys.tenant_of(request.app[SETTINGS], request.app[REDIS], key)
    if tenant is None:
        return error(
            401, "unauthorized", "unknown API key; create one with `framewatch apikeys add`"
        )
    return tenant


@web.middleware
async def redis_down_is_503(request: web.Request, handler: Any) -> web.StreamResponse:
    """Redis (keys, stream owners, registry) unreachable: a retryable 503, not a 500."""
    try:
        return await handler(request)
    except (redis.RedisError, OSError) as exc:
        log.error("%s %s: Redis unavailable: %s", request.method, request.path, exc)
        return error(503, "unavailable", "key store unavailable; retry later")
