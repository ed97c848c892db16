"""Per-tenant API keys for the push API: only SHA-256 hashes are stored, in Redis.

``key(settings, "apikey", <sha256 hex>)`` holds the tenant. The presented key is hashed and the
stored hash is compared with :func:`hmac.compare_digest`, so neither the key nor its hash leaks
through timing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

import redis
import redis.asyncio as aioredis

from framewatch import redisio
from framewatch.settings import Settings

KEY_PREFIX = "fwk_"


def digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def create(settings: Settings, client: redis.Redis, tenant: str) -> str:
    """Make a new key for `tenant`, store its hash, and return the key (shown once)."""
    api_key = KEY_PREFIX + secrets.token_urlsafe(32)
    h = digest(api_key)
    client.set(redisio.key(settings, "apikey", h), json.dumps({"tenant": tenant, "sha256": h}))
    return api_key


def revoke(settings: Settings, client: redis.Redis, api_key_or_hash: str) -> bool:
    h = api_key_or_hash if len(api_key_or_hash) == 64 else digest(api_key_or_hash)
    return bool(client.delete(redisio.key(settings, "apikey", h)))


async def tenant_of(settings: Settings, client: aioredis.Redis, api_key: str) -> str | None:
    """The tenant of a presented key, or None when it is unknown."""
    h = digest(api_key)
    raw = await client.get(redisio.key(settings, "apikey", h))
    if raw is None:
        hmac.compare_digest(h, "0" * 64)  # same work whether or not the key exists
        return None
    entry = json.loads(raw)
    if not hmac.compare_digest(h, str(entry.get("sha256", ""))):
        return None
    return str(entry["tenant"])
