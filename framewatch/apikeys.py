"""Per-tenant API keys, shared by every HTTP API (push, sources, alert acks).

Only the SHA-256 of a key is stored: ``key(settings, "apikey", <sha256 hex>)`` holds
``{"tenant", "sha256", "created_at"}``. A presented key is hashed, looked up by its hash, and the
stored hash compared with :func:`hmac.compare_digest`, so neither the key nor its hash leaks
through timing. A tenant may hold several keys at once: rotation is `add` the new key, move the
clients, `revoke` the old one, and both keys work in between (no downtime).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time

import redis
import redis.asyncio as aioredis

from framewatch import fields, redisio
from framewatch.settings import Settings

KEY_PREFIX = "fwk_"


def digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def create(settings: Settings, client: redis.Redis, tenant: str) -> str:
    """Make a new key for `tenant`, store its hash, and return the key (shown once). The
    tenant is an id (``fields.ident``): it names keys, log fields and metric labels."""
    fields.ident(tenant, "tenant")
    api_key = KEY_PREFIX + secrets.token_urlsafe(32)
    h = digest(api_key)
    entry = {"tenant": tenant, "sha256": h, "created_at": round(time.time(), 3)}
    client.set(redisio.key(settings, "apikey", h), json.dumps(entry))
    return api_key


def revoke(settings: Settings, client: redis.Redis, api_key_or_hash: str) -> bool:
    h = api_key_or_hash if len(api_key_or_hash) == 64 else digest(api_key_or_hash)
    return bool(client.delete(redisio.key(settings, "apikey", h)))


def list_keys(settings: Settings, client: redis.Redis, tenant: str | None = None) -> list[dict]:
    """Stored entries (hash, tenant, created_at), never keys: to pick which one to revoke."""
    out = []
    for k in client.scan_iter(match=redisio.key(settings, "apikey", "*"), count=500):
        raw = client.get(k)
        if raw is None:
            continue
        entry = json.loads(raw)  # type: ignore[arg-type]
        if tenant is None or entry.get("tenant") == tenant:
            out.append(entry)
    return sorted(out, key=lambda e: (e.get("tenant", ""), e.get("created_at", 0)))


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


def bearer(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer KEY`` header, or None."""
    if not authorization or not authorization.startswith("Bearer "):
        return None
    return authorization[7:].strip() or None
