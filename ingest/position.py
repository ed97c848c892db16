"""A stream's position, part of the source's interface: where ingest is in a stream, so that a
restart continues it (bytewax-style snapshot and resume).

The position is what the next sample needs: the life of the stream (``session``), the next
``seq``, the last presentation time (a new connection continues after it) and the last PDQ hash
sent (near-duplicate suppression). It is saved in Redis under
``key(settings, "ingestpos", scope.key(tenant, stream_id))`` after frames are acknowledged by
Kafka, never before, so a resumed stream never skips a frame that was not sent.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

import redis.asyncio as aioredis

from framewatch import records, redisio, scope
from framewatch.settings import Settings
from ingest.metrics import POSITION_ERRORS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Position:
    session: str
    seq: int  # the next frame's seq
    pts: float  # presentation time of the last frame sent
    pdq: str | None  # PDQ of the last frame sent
    saved_at: float  # wall clock, epoch seconds

    @classmethod
    def after(cls, frame: records.Frame) -> Position:
        """The position once ``frame`` was sent."""
        return cls(frame.session or "", frame.seq + 1, frame.pts, frame.pdq, records.now())

    @classmethod
    def from_json(cls, raw: bytes | str) -> Position:
        d = json.loads(raw)
        return cls(str(d["session"]), int(d["seq"]), float(d["pts"]), d.get("pdq"),
                   float(d["saved_at"]))  # fmt: skip


class PositionStore:
    """Saved positions in Redis; failures are counted and logged, never raised (the position
    is what makes a restart seamless, not what keeps a stream moderated)."""

    def __init__(self, settings: Settings, client: aioredis.Redis) -> None:
        self.settings = settings
        self.client = client

    def key(self, tenant: str, stream_id: str) -> str:
        return redisio.key(self.settings, "ingestpos", scope.key(tenant, stream_id))

    async def load(self, tenant: str, stream_id: str) -> Position | None:
        try:
            raw = await self.client.get(self.key(tenant, stream_id))
            return Position.from_json(raw) if raw else None
        except Exception as exc:
            POSITION_ERRORS.labels(op="load").inc()
            log.warning("position of %s/%s unreadable (%s); starting it afresh",
                        tenant, stream_id, exc)  # fmt: skip
            return None

    async def save(self, tenant: str, stream_id: str, pos: Position) -> None:
        try:
            await self.client.set(
                self.key(tenant, stream_id),
                json.dumps(asdict(pos)),
                ex=self.settings.ingest.position_ttl_s,
            )
        except Exception as exc:
            POSITION_ERRORS.labels(op="save").inc()
            log.debug("saving the position of %s/%s failed: %s", tenant, stream_id, exc)
