"""The tenant APIs (a tenant API key): ``POST /v1/appeals``, ``GET /v1/appeals/{id}``, and
``PUT /v1/streams/{stream_id}/viewers``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiohttp import web
from pydantic import ValidationError

from console.appeals import AppealIn
from console.viewers import ViewersIn
from framewatch import apikeys, fields

if TYPE_CHECKING:
    from console.web import Console


def _c(request: web.Request) -> Console:
    from console.web import CTX

    return request.app[CTX]


def _error(status: int, msg: str) -> web.Response:
    return web.json_response({"error": msg}, status=status)


async def _tenant(request: web.Request) -> str | None:
    key = apikeys.bearer(request.headers.get("Authorization"))
    return await apikeys.tenant_of(_c(request).settings, _c(request).redis, key) if key else None


async def post_appeal(request: web.Request) -> web.Response:
    c = _c(request)
    tenant = await _tenant(request)
    if tenant is None:
        return _error(401, "send 'Authorization: Bearer <tenant API key>' (framewatch apikeys add)")
    try:
        body = AppealIn.model_validate_json(await request.read())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(body)"
        return _error(400, f"{where}: {first['msg']}")
    d = c.index.decisions.get(body.decision_id)
    if d is None or d.tenant != tenant:
        return _error(404, f"no decision {body.decision_id!r} of this tenant (yet)")
    if d.action == "allow":
        return _error(
            409, "that decision is an allow: only block and review decisions are appealed"
        )
    appeal, new = await c.appeals.file(tenant, body)
    return web.json_response(appeal, status=201 if new else 200)


async def get_appeal(request: web.Request) -> web.Response:
    c = _c(request)
    tenant = await _tenant(request)
    if tenant is None:
        return _error(401, "send 'Authorization: Bearer <tenant API key>'")
    a = await c.appeals.get(tenant, request.match_info["appeal_id"])
    return web.json_response(a) if a else _error(404, "no such appeal")


async def put_viewers(request: web.Request) -> web.Response:
    """``PUT /v1/streams/{stream_id}/viewers``: the platform reports a live stream's audience;
    within a severity, bigger audiences are reviewed first (console/viewers.py)."""
    c = _c(request)
    tenant = await _tenant(request)
    if tenant is None:
        return _error(401, "send 'Authorization: Bearer <tenant API key>' (framewatch apikeys add)")
    stream_id = request.match_info["stream_id"]
    try:
        fields.ident(stream_id, "stream id")
    except fields.BadIdError as exc:
        return _error(422, str(exc))
    try:
        body = ViewersIn.model_validate_json(await request.read())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(body)"
        return _error(400, f"{where}: {first['msg']}")
    now = time.time()
    await c.viewers.report(tenant, stream_id, body.viewers, now)
    c.index.set_viewers({**c.index.viewers, (tenant, stream_id): body.viewers})
    return web.json_response({"tenant": tenant, "stream_id": stream_id, "viewers": body.viewers})


def add_routes(app: web.Application) -> None:
    app.router.add_put("/v1/streams/{stream_id}/viewers", put_viewers)
    app.router.add_post("/v1/appeals", post_appeal)
    app.router.add_get("/v1/appeals/{appeal_id}", get_appeal)
