"""A stand-in for the DSA Transparency Database's batch endpoint (the real one is unreachable).

It implements the published rules and the source's behaviour (transparency-database at
69e80a0b: routes/api_v1.php, StatementMultipleAPIController, GroupedSubmissionsService,
PlatformUniqueIdService, RouteServiceProvider), not framewatch's:
- ``POST /api/v1/statements`` with ``Authorization: Bearer <token>``, else 401;
- ``statements`` must be an array of 1-100, else 422 ``errors.statements``;
- each statement is checked with the rule table of tests/streams/dsa_rules.py; any failure is
  422 ``errors.statement_N`` and nothing is created;
- a puid twice in one call, or one the platform already submitted, is 422 with
  ``errors.existing_puids`` and nothing is created;
- otherwise 201 with the created statements.
The real API limits a token to 200 calls/s and 12,000/min with a 429; here faults are scripted:
``faults`` by call number, "429" (with Retry-After) or "503"; ``lose_creates`` by the ordinal
of a call that creates statements: created, then a 500 (the answer never reached the client).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.streams import dsa_rules


@dataclass
class Call:
    status: int
    puids: list[str]


@dataclass
class FakeTransparencyDb:
    token: str
    retired: frozenset[str] = frozenset()
    faults: dict[int, str] = field(default_factory=dict)
    lose_creates: set[int] = field(default_factory=set)
    creates: int = 0
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> FakeTransparencyDb:
        app = web.Application()
        app.router.add_post("/api/v1/statements", self._store)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    def _answer(self, status: int, puids: list[str], body: Any, **kw: Any) -> web.Response:
        self.calls.append(Call(status, puids))
        if isinstance(body, str):
            return web.Response(status=status, text=body, **kw)
        return web.json_response(body, status=status, **kw)

    async def _store(self, request: web.Request) -> web.Response:
        n = len(self.calls) + 1
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._answer(401, [], {"message": "Unauthenticated."})
        try:
            body = await request.json()
        except ValueError:
            body = None
        stmts = body.get("statements") if isinstance(body, dict) else None
        if not isinstance(stmts, list) or not 1 <= len(stmts) <= 100:
            msg = "The statements field must have between 1 and 100 items."
            return self._answer(422, [], {"message": msg, "errors": {"statements": [msg]}})
        puids = [s.get("puid") if isinstance(s, dict) else None for s in stmts]
        fault = self.faults.get(n)
        if fault == "429":
            return self._answer(429, puids, "Limit Reached. Please do not overload the API",
                                headers={"Retry-After": "1"})  # fmt: skip
        if fault == "503":
            return self._answer(503, puids, "Service Unavailable")
        errors = {
            f"statement_{i}": e
            for i, s in enumerate(stmts)
            if (e := dsa_rules.check(s if isinstance(s, dict) else {}, self.retired))
        }
        if errors:
            return self._answer(422, puids, {"errors": errors})
        dups = sorted(
            {p for p in puids if puids.count(p) > 1} | {p for p in puids if p in self.stored}
        )
        if dups:
            msg = "The platform identifier(s) are not all unique within this call."
            return self._answer(
                422, puids, {"message": msg, "errors": {"puid": [msg], "existing_puids": dups}}
            )
        created = [{**s, "uuid": str(uuid.uuid4())} for s in stmts]
        for s in created:
            self.stored[s["puid"]] = s
        self.creates += 1
        if self.creates in self.lose_creates:
            return self._answer(500, puids, "Server Error")
        return self._answer(201, puids, {"statements": created})
