"""Redis clients built from settings, and the key naming every stage shares."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from framewatch.settings import Settings


def key(settings: Settings, *parts: str) -> str:
    """A namespaced key, e.g. key(s, 'bank', 'csam') -> 'fw:bank:csam'."""
    return settings.redis_prefix + ":".join(parts)


def pool_options(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Connection options every client shares (timeouts from settings)."""
    return {
        "socket_connect_timeout": settings.redis_connect_timeout_s,
        "health_check_interval": settings.redis_health_check_s,
        **overrides,
    }


def async_client(settings: Settings, **overrides: Any) -> aioredis.Redis:
    return aioredis.from_url(
        settings.redis_url.get_secret_value(), **pool_options(settings, **overrides)
    )


def hot_path_client(settings: Settings) -> aioredis.Redis:
    """For calls that are only a hint or a shortcut: no retries, a short socket timeout, so
    Redis down costs a log line, never a stalled frame."""
    return async_client(
        settings, retry=Retry(NoBackoff(), 0), socket_timeout=settings.redis_hot_path_timeout_s
    )


def sync_client(settings: Settings, **overrides: Any) -> redis.Redis:
    return redis.from_url(
        settings.redis_url.get_secret_value(), **pool_options(settings, **overrides)
    )
