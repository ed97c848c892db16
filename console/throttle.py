"""Login throttling: failed logins counted per user name and per client address, in Redis.

A failure increments two counters (``console:login-fail:name:NAME`` and ``...:addr:ADDRESS``),
each expiring ``login_window_s`` after its first failure. At a limit, further attempts are
refused before the password is checked (so a throttled guess costs no Argon2 time and learns
nothing) until the window ends. A success clears the name's counter, never the address's. Names
that do not exist count like real ones, so throttling does not tell which names exist. The limit
per name may be set per tenant (``login_tenant_max_failures``): the strictest of the user's
tenants applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from framewatch import redisio
from framewatch.settings import Settings


@dataclass(frozen=True)
class Throttled:
    """Why a login is refused and for how long."""

    by: str  # "name" or "address"
    retry_after_s: int

    @property
    def message(self) -> str:
        mins = max(1, -(-self.retry_after_s // 60))
        who = "this user name" if self.by == "name" else "your address"
        return (
            f"too many failed logins for {who}: try again in {mins} minute"
            f"{'s' if mins > 1 else ''}, or ask an admin to run `framewatch console user unlock`"
        )


class LoginThrottle:
    def __init__(self, settings: Settings, redis: aioredis.Redis) -> None:
        self.s = settings
        self.r = redis

    def _key(self, kind: str, value: str) -> str:
        return redisio.key(self.s, "console", "login-fail", kind, value[:200])

    def limit_for(self, tenants: list[str]) -> int:
        cfg = self.s.console
        per = [
            cfg.login_tenant_max_failures[t] for t in tenants if t in cfg.login_tenant_max_failures
        ]
        return min(per, default=cfg.login_max_failures_account)

    async def check(self, name: str, address: str, tenants: list[str]) -> Throttled | None:
        """Refuse (before any password check) a name or address at its limit."""
        cfg = self.s.console
        for kind, value, limit in (
            ("name", name, self.limit_for(tenants)),
            ("addr", address, cfg.login_max_failures_address),
        ):
            key = self._key(kind, value)
            got = await self.r.get(key)
            if got is not None and int(got) >= limit:
                ttl = await self.r.ttl(key)
                by = "name" if kind == "name" else "address"
                return Throttled(by, ttl if ttl > 0 else cfg.login_window_s)
        return None

    async def failed(self, name: str, address: str) -> tuple[int, int]:
        """Count a failure; returns the name's and the address's counts in this window."""
        window = self.s.console.login_window_s
        pipe = self.r.pipeline()
        for kind, value in (("name", name), ("addr", address)):
            key = self._key(kind, value)
            pipe.incr(key)
            pipe.expire(key, window, nx=True)
        res = await pipe.execute()
        return int(res[0]), int(res[2])

    async def succeeded(self, name: str) -> None:
        await self.r.delete(self._key("name", name))

    async def unlock(self, name: str) -> bool:
        """An admin lifts a name's throttle; True if it had failures counted."""
        return bool(await self.r.delete(self._key("name", name)))
