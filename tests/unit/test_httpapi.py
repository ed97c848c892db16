"""The one error envelope and middleware of framewatch's HTTP APIs, on a real aiohttp server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis
from aiohttp import ClientSession, web

from framewatch.httpapi import TENANT, HttpError, middleware


async def _auth(request: web.Request) -> str | None:
    return {"Bearer good": "acme"}.get(request.headers.get("Authorization", ""))


@pytest.fixture
async def base() -> AsyncIterator[str]:
    errors: list[int] = []

    async def whoami(request: web.Request) -> web.Response:
        return web.json_response({"tenant": request[TENANT]})

    async def refuse(_r: web.Request) -> web.Response:
        raise HttpError(409, "conflict", "stream taken; pick another id")

    async def redis_down(_r: web.Request) -> web.Response:
        raise redis.ConnectionError("Connection refused")

    app = web.Application(middlewares=[middleware(auth=_auth, on_error=errors.append)])
    app.router.add_get("/v1/me", whoami)
    app.router.add_get("/v1/refuse", refuse)
    app.router.add_get("/v1/redis", redis_down)
    app.router.add_get("/healthz", lambda _r: web.json_response({"ok": True}))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.mark.parametrize(
    ("path", "auth", "status", "code"),
    [
        ("/v1/me", None, 401, "unauthorized"),
        ("/v1/me", "Bearer bad", 401, "unauthorized"),
        ("/v1/refuse", "Bearer good", 409, "conflict"),
        ("/v1/redis", "Bearer good", 503, "unavailable"),
        ("/v1/nowhere", "Bearer good", 404, "not_found"),
    ],
)
async def test_every_error_has_the_one_envelope(
    base: str, path: str, auth: str | None, status: int, code: str
) -> None:
    async with ClientSession() as http:
        headers = {"Authorization": auth} if auth else {}
        async with http.get(base + path, headers=headers) as r:
            body = await r.json()
    assert r.status == status and body["error"] == code and body["message"], body
    assert set(body) == {"error", "message"}


async def test_authenticated_and_public_routes_pass(base: str) -> None:
    async with ClientSession() as http:
        async with http.get(base + "/v1/me", headers={"Authorization": "Bearer good"}) as r:
            assert (await r.json()) == {"tenant": "acme"}
        async with http.get(base + "/healthz") as r:
            assert r.status == 200
