"""Reviewer accounts and login sessions, in Redis.

Passwords are hashed with Argon2id (argon2-cffi's defaults). A session is a random token in an
HttpOnly, SameSite=Strict cookie; Redis holds ``{user, csrf}`` under it for ``session_ttl_s``, so
logging out or deleting a user ends it everywhere. Every form and script POST carries the
session's CSRF token.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import redis.asyncio as aioredis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from framewatch import redisio
from framewatch.errors import FramewatchError
from framewatch.settings import Settings

ROLES = ("reviewer", "lead", "admin")
_HASHER = PasswordHasher()
# verified when the user does not exist, so a wrong name costs the same time as a wrong password
_DUMMY = _HASHER.hash("framewatch-no-such-user")


class ConsoleError(FramewatchError):
    """A console request or command that cannot be done; the message says what to do."""


@dataclass
class User:
    name: str
    role: str
    tenants: list[str] = field(default_factory=list)  # ["*"]: every tenant (admins)
    password_hash: str = ""
    created_at: float = 0.0

    def sees(self, tenant: str) -> bool:
        return "*" in self.tenants or tenant in self.tenants

    def tenant_set(self) -> set[str] | None:
        return None if "*" in self.tenants else set(self.tenants)

    @property
    def is_lead(self) -> bool:
        return self.role in ("lead", "admin")


class Auth:
    def __init__(self, settings: Settings, redis: aioredis.Redis) -> None:
        self.s = settings
        self.r = redis

    def _ukey(self, name: str) -> str:
        return redisio.key(self.s, "console", "user", name)

    def _skey(self, token: str) -> str:
        return redisio.key(self.s, "console", "session", token)

    async def add_user(self, name: str, role: str, tenants: list[str], password: str) -> User:
        if role not in ROLES:
            raise ConsoleError(f"unknown role {role!r}; pick one of {', '.join(ROLES)}")
        if not tenants:
            raise ConsoleError("give at least one --tenant (or --tenant '*' for an admin)")
        if len(password) < 10:
            raise ConsoleError("the password must have at least 10 characters")
        u = User(name, role, sorted(set(tenants)), _HASHER.hash(password), round(time.time(), 3))
        await self.r.set(self._ukey(name), json.dumps(asdict(u)))
        return u

    async def user(self, name: str) -> User | None:
        raw = await self.r.get(self._ukey(name))
        return User(**json.loads(raw)) if raw else None

    async def users(self) -> list[User]:
        out = []
        async for k in self.r.scan_iter(match=self._ukey("*"), count=500):
            raw = await self.r.get(k)
            if raw:
                out.append(User(**json.loads(raw)))
        return sorted(out, key=lambda u: u.name)

    async def check_password(self, name: str, password: str) -> User | None:
        u = await self.user(name)
        try:
            _HASHER.verify(u.password_hash if u else _DUMMY, password)
        except (VerificationError, InvalidHashError):
            return None
        return u

    async def start_session(self, user: User) -> tuple[str, str]:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        body = json.dumps({"user": user.name, "csrf": csrf, "at": time.time()})
        await self.r.set(self._skey(token), body, ex=self.s.console.session_ttl_s)
        return token, csrf

    async def session(self, token: str | None) -> tuple[User, str] | None:
        if not token or len(token) > 100:
            return None
        raw = await self.r.get(self._skey(token))
        if raw is None:
            return None
        sess: dict[str, Any] = json.loads(raw)
        u = await self.user(sess["user"])
        return (u, sess["csrf"]) if u else None

    async def end_session(self, token: str) -> None:
        await self.r.delete(self._skey(token))


def csrf_ok(expected: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(expected, presented or "")
