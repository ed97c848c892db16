"""RTMP stream keys: a publisher's secret, stored only as a digest (like API keys).

``key(settings, "streamkey", <sha256 hex>)`` holds ``{"tenant", "account_id", "stream_id",
"sha256"}``; a presented key is hashed, looked up by its digest and the stored digest compared
in constant time (:func:`framewatch.apikeys.digest`, the same hash as API keys). Keys made by
older versions were stored under the clear key: :func:`lookup` still finds them and moves them
to their digest on first use, so no migration step is needed and no clear key stays in Redis
after its publisher's next connection.
"""

from __future__ import annotations

import hmac
import json
import secrets
from typing import Any

import redis
import redis.asyncio as aioredis

from framewatch import apikeys, fields, redisio
from framewatch.settings import Settings


def _key(settings: Settings, digest_hex: str) -> str:
    return redisio.key(settings, "streamkey", digest_hex)


def create_key(
    settings: Settings, client: redis.Redis, tenant: str, account_id: str, stream_id: str
) -> str:
    """A new stream key for a publisher (shown once); it names the tenant, so the stream is
    that tenant's `stream_id` (``framewatch.scope``). Ids must be ``fields.ident`` ids."""
    fields.ident(stream_id, "stream id")  # BadIdError naming the rule: ids become labels
    fields.ident(account_id, "account id")
    key = secrets.token_urlsafe(24)
    h = apikeys.digest(key)
    entry = {"tenant": tenant, "account_id": account_id, "stream_id": stream_id, "sha256": h}
    client.set(_key(settings, h), json.dumps(entry))
    return key


async def lookup(settings: Settings, client: aioredis.Redis, key: str) -> dict[str, Any] | None:
    """The entry of a presented stream key, or None when it is unknown."""
    h = apikeys.digest(key)
    raw = await client.get(_key(settings, h))
    if raw is None:
        legacy = _key(settings, key)
        raw = await client.get(legacy) if len(key) != 64 else None
        if raw is None:
            hmac.compare_digest(h, "0" * 64)  # the same work for a miss
            return None
        entry = {**json.loads(raw), "sha256": h}  # a clear key of an older version: move it
        async with client.pipeline(transaction=True) as pipe:
            await pipe.set(_key(settings, h), json.dumps(entry)).delete(legacy).execute()
        return entry
    entry = json.loads(raw)
    if not hmac.compare_digest(h, str(entry.get("sha256", ""))):
        return None
    return dict(entry)
