"""What the ingest HTTP routes share: app keys, the error body and the core middleware.

Both route modules (``ingest/push.py``, ``ingest/sources_api.py``) import what they share from
here (app keys, the error body, the middleware: keys, errors, Redis-down); ``ingest/api.py``
assembles the app. No circle: http <- push, sources_api <- api.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from aiokafka import AIOKafkaProducer

from framewatch import apikeys, httpapi
from framewatch.settings import Settings
from ingest.metrics import PUSH_REQUESTS

SETTINGS = web.AppKey("settings", Settings)
PRODUCER = web.AppKey("producer", AIOKafkaProducer)
REDIS = web.AppKey("redis", aioredis.Redis)
DECODES = web.AppKey("decodes", asyncio.Semaphore)


def error(status: int, code: str, message: str) -> web.Response:
    """The core envelope, counted in the push API's request metric."""
    count(status)
    return httpapi.error_response(status, code, message)


def count(status: int) -> None:
    PUSH_REQUESTS.labels(status=str(status)).inc()


async def tenant_of(request: web.Request) -> str | None:
    """The caller's tenant from its API key (None: the middleware answers 401)."""
    key = apikeys.bearer(request.headers.get("Authorization"))
    if key is None:
        return None
    return await apikeys.tenant_of(request.app[SETTINGS], request.app[REDIS], key)


def middleware() -> Any:
    """Keys, errors and Redis-down for every ingest route (framewatch.httpapi)."""
    return httpapi.middleware(
        auth=tenant_of,
        unauthorized="send the tenant's API key as 'Authorization: Bearer KEY' (create one "
        "with `framewatch apikeys add`)",
        on_error=count,
    )
