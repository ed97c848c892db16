"""Which tenant owns a stream id: the first tenant to push to it or register it.

Downstream state (smoothing, strikes, decisions) is keyed by stream id, so a tenant must never
put frames into, or register a pull over, another tenant's stream. The claim is one Redis key,
``key(settings, "streamowner", stream_id)``, set once (``SET NX``) and never overwritten.
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

from framewatch import redisio
from framewatch.settings import Settings
from ingest.errors import IngestError


class StreamOwnedError(IngestError):
    """The stream id belongs to another tenant."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(
            f"stream {stream_id!r} belongs to another tenant; use a stream id of your own"
        )
        self.stream_id = stream_id


def _key(settings: Settings, stream_id: str) -> str:
    return redisio.key(settings, "streamowner", stream_id)


def _decode(raw: bytes | str | None) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else raw


async def claim(settings: Settings, client: aioredis.Redis, tenant: str, stream_id: str) -> None:
    """Claim `stream_id` for `tenant` (first use), or raise StreamOwnedError."""
    k = _key(settings, stream_id)
    if await client.set(k, tenant, nx=True):
        return
    if _decode(await client.get(k)) != tenant:
        raise StreamOwnedError(stream_id)


def claim_sync(settings: Settings, client: redis.Redis, tenant: str, stream_id: str) -> None:
    k = _key(settings, stream_id)
    if client.set(k, tenant, nx=True):
        return
    if _decode(client.get(k)) != tenant:  # type: ignore[arg-type]
        raise StreamOwnedError(stream_id)
