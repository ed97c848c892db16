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
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from framewatch import fields, httpapi, scope
from framewatch.httpapi import TENANT
from framewatch.netguard import UrlRefusedError
from framewatch.redact import mask_url
from ingest import egress, registry
from ingest.http import REDIS, SETTINGS, error  # one server with the push API


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
    tenant = request[TENANT]
    mine = [
        {**asdict(e), "source": mask_url(e.source)}
        for e in (await _entries(request)).values()
        if e.tenant == tenant
    ]
    return web.json_response({"sources": sorted(mine, key=lambda e: e["stream_id"])})


class SourceRequest(BaseModel):
    """The body of ``PUT /v1/sources/{stream_id}``."""

    model_config = ConfigDict(extra="forbid")
    source: str = Field(
        min_length=1, description="rtmp(s)/rtsp(s)/srt/HLS http(s) URL on a public address"
    )
    account_id: str = Field(
        min_length=1, json_schema_extra={"pattern": fields.ID_PATTERN, "maxLength": fields.ID_MAX}
    )  # checked after parsing, so a bad id is a 422 naming the rule, as on the path
    channel: str | None = None
    fps: float | None = Field(None, gt=0, le=60, strict=True)
    keyframes: bool = Field(False, strict=True)


class Source(BaseModel):
    """A registered pull, as listed."""

    source: str
    stream_id: str
    account_id: str
    tenant: str
    channel: str | None
    fps: float | None
    keyframes: bool


class SourceList(BaseModel):
    sources: list[Source]


class Registered(BaseModel):
    stream_id: str
    registered: bool


class Removed(BaseModel):
    stream_id: str
    removed: bool


MODELS = (SourceRequest, Source, SourceList, Registered, Removed)


async def put_source(request: web.Request) -> web.Response:
    tenant = request[TENANT]
    settings = request.app[SETTINGS]
    stream_id = httpapi.ident(request.match_info["stream_id"], "stream id")
    raw = await httpapi.body_within(request.read(), settings.ingest.body_timeout_s)
    try:
        body = SourceRequest.model_validate_json(raw)
    except ValidationError as exc:  # not JSON, too deep, a wrong or missing field
        raise httpapi.invalid(exc) from None
    httpapi.ident(body.account_id, "account id")
    entry = registry.SourceEntry(stream_id=stream_id, tenant=tenant, **body.model_dump())
    try:
        await asyncio.to_thread(
            egress.check, entry.source, allow_private=settings.ingest.allow_private_urls
        )
    except (UrlRefusedError, ValueError) as exc:
        return error(400, "url_refused", str(exc))
    await request.app[REDIS].hset(registry._hash(settings), entry.key, json.dumps(asdict(entry)))
    return web.json_response({"stream_id": stream_id, "registered": True})


async def delete_source(request: web.Request) -> web.Response:
    tenant = request[TENANT]
    stream_id = httpapi.ident(request.match_info["stream_id"], "stream id")
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
    """The /v1/sources part of the push API's OpenAPI document (schemas: ``MODELS``)."""
    err = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    sid = {"name": "stream_id", "in": "path", "required": True, "schema": fields.ID_SCHEMA}
    unauth = {
        "401": {"description": "missing or unknown API key", "content": err},
        "422": {
            "description": f"a stream or account id that is not {fields.ID_RULE}",
            "content": err,
        },
        "503": {"description": "Redis unavailable; retry", "content": err},
    }
    return {
        "/v1/sources": {
            "get": {
                "summary": "this tenant's registered pulls",
                "security": [{"bearer": []}],
                "responses": {
                    "200": {
                        "description": "the pulls",
                        "content": httpapi.json_content(SourceList),
                    },
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
                            "schema": httpapi.ref(SourceRequest),
                            "example": {
                                "source": "rtmp://93.184.215.14/live/stream-key",
                                "account_id": "acct-1",
                            },
                        }
                    },  # a public address literal: registrable without DNS
                },
                "responses": {
                    "200": {
                        "description": "registered",
                        "content": httpapi.json_content(Registered),
                    },
                    "400": {"description": "bad body, or URL refused (SSRF guard)", "content": err},
                    "408": {
                        "description": "the body did not arrive within ingest.body_timeout_s",
                        "content": err,
                    },
                    **unauth,
                },
            },
            "delete": {
                "summary": "remove a pull of this tenant",
                "security": [{"bearer": []}],
                "parameters": [sid],
                "responses": {
                    "200": {"description": "removed", "content": httpapi.json_content(Removed)},
                    "404": {"description": "no such pull of this tenant", "content": err},
                    **unauth,
                },
            },
        },
    }
