"""Redis clients built from settings, and the key naming every stage shares."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis

from framewatch.settings import Settings


def key(settings: Settings, *parts: str) -> str:
    """A namespaced key, e.g. key(s, 'bank', 'csam') -> 'fw:bank:csam'."""
    return settings.redis_prefix + ":".join(parts)


def _kw(**overrides: Any) -> dict[str, Any]:
    return {"socket_connect_timeout": 3, "health_check_interval": 15, **overrides}


def async_client(settings: Settings, **overrides: Any) -> aioredis.Redis:
    return aioredis.from_url(settings.redis_url.get_secret_value(), **_kw(**overrides))


def sync_client(settings: Settings, **overrides: Any) -> redis.Redis:
    return redis.from_url(settings.redis_url.get_secret_value(), **_kw(**overrides))
