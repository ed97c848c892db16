"""Tenant-scoped HTTP API over the pull registry: ``/v1/sources`` on the push API's server.

A tenant's API key registers, lists and removes only that tenant's pulls. Only network URLs can
be registered (files on the ingest host are not a tenant's to read), they pass the SSRF guard,
and every entry is keyed by tenant and stream id (``framewatch.scope``): a tenant names its own
streams, and another tenant's stream of the same id is a different stream.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Any

from aiohttp import web

from framewatch import apikeys, scope
from framewatch.netguard import UrlRefusedError
from framewatch.redact import mask_url
from ingest import egress, registry
from ingest.push import REDIS, SETTINGS, error  # the same server as the push API


async def authenticate(request: web.Request) -> str | web.Response:
    """The caller's tenant, or the 401 response to send."""
    key = apikeys.bearer(request.headers.get("Authorization"))
    if key is None:
        return error(
            401, "unauthorized", "send the tenant's API key as 'Authorization: Bearer KEY'"
        )
    tenant = await apikeys.tenant_of(request.app[SETTINGS], request.app[REDIS], key)
    if tenant is None:
        return error(
            401, "unauthorized", "unknown API key; create one with `framewatch apikeys add`"
        )
    return tenant


async def _entries(request: web.Request) -> dict[str, registry.SourceEntry]:
    raw = await request.app[REDIS].hgetall(registry._hash(request.app[SETTINGS]))
    out = {}
    for k, v in raw.items():
        try:
            out[k.decode() if isinstance(k, bytes) else k] = registry.SourceEntry(**json.loads(v))
        except (ValueError, TypeError):
            continue  # malformed entries are reported by the supervisor
    return out


async def list_sources(request: web.Request) -> web.Response:
    tenant = await authenticate(request)
    if isinstance(tenant, web.Response):
        return tenant
    mine = [
        {**asdict(e), "source": mask_url(e.source)}
        for e in (await _entries(request)).values()
        if e.tenant == tenant
    ]
    return web.json_response({"sources": sorted(mine, key=lambda e: e["stream_id"])})


def _entry(body: Any, stream_id: str, tenant: str) -> registry.SourceEntry:
    """The registry entry of a request body, or ValueError saying what is wrong."""
    if not isinstance(body, dict):
        raise ValueError('the body must be a JSON object {"source": URL, "account_id": ...}')
    source, account = body.get("source"), body.get("account_id")
    if not isinstance(source, str) or not source:
        raise ValueError("'source' must be a pull URL (rtmp, rtsp, srt or HLS http(s))")
    if not isinstance(account, str) or not account:
        raise ValueError("'account_id' must be a non-empty string")
    channel, fps, keyframes = body.get("channel"), body.get("fps"), body.get("keyframes", False)
    if channel is not None and not isinstance(channel, str):
        raise ValueError("'channel' must be a string")
    if fps is not None and (
        isinstance(fps, bool) or not isinstance(fps, int | float) or not 0 < fps <= 60
    ):
        raise ValueError("'fps' must be a number in (0, 60]")
    if not isinstance(keyframes, bool):
        raise ValueError("'keyframes' must be true or false")
    return registry.SourceEntry(source, stream_id, account, tenant, channel, fps, keyframes)


async def put_source(request: web.Request) -> web.Response:
    tenant = await authenticate(request)
    if isinstance(tenant, web.Response):
        return tenant
    settings = request.app[SETTINGS]
    stream_id = request.match_info["stream_id"]
    try:
        entry = _entry(await request.json(), stream_id, tenant)
    except ValueError as exc:  # JSONDecodeError included
        return error(400, "bad_request", str(exc))
    try:
        await asyncio.to_thread(
            egress.check, entry.source, allow_private=settings.ingest.allow_private_urls
        )
    except (UrlRefusedError, ValueError) as exc:
        return error(400, "url_refused", str(exc))
    await request.app[REDIS].hset(registry._hash(settings), entry.key, json.dumps(asdict(entry)))
    return web.json_response({"stream_id": stream_id, "registered": True})


async def delete_source(request: web.Request) -> web.Response:
    tenant = await authenticate(request)
    if isinstance(tenant, web.Response):
        return tenant
    stream_id = request.match_info["stream_id"]
    entry = (await _entries(request)).get(scope.key(tenant, stream_id))
    if entry is None or entry.tenant != tenant:  # another tenant's pull is not this one
        return error(404, "not_found", f"you have no registered source {stream_id!r}")
    await request.app[REDIS].hdel(registry._hash(request.app[SETTINGS]), entry.key)
    return web.json_response({"stream_id": stream_id, "removed": True})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/sources", list_sources)
    app.router.add_put("/v1/sources/{stream_id}", put_source)
    app.router.add_delete("/v1/sources/{stream_id}", delete_source)


def openapi_paths() -> dict[str, Any]:
    """The /v1/sources part of the push API's OpenAPI document."""
    err = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    entry = {
        "type": "object",
        "required": ["source", "stream_id", "account_id", "tenant", "keyframes"],
        "properties": {
            "source": {"type": "string"}, "stream_id": {"type": "string"},
            "account_id": {"type": "string"}, "tenant": {"type": "string"},
            "channel": {"type": ["string", "null"]}, "fps": {"type": ["number", "null"]},
            "keyframes": {"type": "boolean"},
        },
    }  # fmt: skip
    body = {
        "type": "object",
        "required": ["source", "account_id"],
        "properties": {
            "source": {
                "type": "string",
                "description": "rtmp(s)/rtsp(s)/srt/HLS http(s) URL on a public address",
            },
            "account_id": {"type": "string", "minLength": 1},
            "channel": {"type": "string"},
            "fps": {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
            "keyframes": {"type": "boolean"},
        },
    }
    sid = {"name": "stream_id", "in": "path", "required": True, "schema": {"type": "string"}}
    unauth = {
        "401": {"description": "missing or unknown API key", "content": err},
        "503": {"description": "Redis unavailable; retry", "content": err},
    }

    def ok(desc: str, props: dict[str, Any]) -> dict[str, Any]:
        schema = {"type": "object", "required": list(props), "properties": props}
        return {"description": desc, "content": {"application/json": {"schema": schema}}}

    return {
        "/v1/sources": {
            "get": {
                "summary": "this tenant's registered pulls",
                "security": [{"bearer": []}],
                "responses": {
                    "200": ok("the pulls", {"sources": {"type": "array", "items": entry}}),
                    **unauth,
                },
            }
        },
        "/v1/sources/{stream_id}": {
            "put": {
                "summary": "register (or replace) a pull of this tenant",
                "security": [{"bearer": []}],
                "parameters": [sid],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": body,
                            "example": {
                                "source": "rtmp://93.184.215.14/live/stream-key",
                                "account_id": "acct-1",
                            },
                        }
                    },  # a public address literal: registrable without DNS
                },
                "responses": {
                    "200": ok(
                        "registered",
                        {"stream_id": {"type": "string"}, "registered": {"type": "boolean"}},
                    ),
                    "400": {"description": "bad body, or URL refused (SSRF guard)", "content": err},
                    **unauth,
                },
            },
            "delete": {
                "summary": "remove a pull of this tenant",
                "security": [{"bearer": []}],
                "parameters": [sid],
                "responses": {
                    "200": ok(
                        "removed", {"stream_id": {"type": "string"}, "removed": {"type": "boolean"}}
                    ),
                    "404": {"description": "no such pull of this tenant", "content": err},
                    **unauth,
                },
            },
        },
    }
