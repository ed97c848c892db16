"""HTTP frame push API: platforms that already make thumbnails POST them here.

``POST /v1/streams/{stream_id}/frames`` with a JPEG/PNG/WebP body (raw or multipart) and
``Authorization: Bearer <api key>``; answers 202 ``{"frame_id": ...}`` once Kafka acknowledged
the frame, or a 4xx JSON error ``{"error": code, "message": ...}`` that says what was wrong.
The frame_id is derived from tenant, stream and image bytes, so a retried push is idempotent.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import ValidationError

from framewatch import deadletter, fields, httpapi, images, records, redisio, scope
from framewatch.httpapi import TENANT
from framewatch.settings import Settings
from ingest import framedata, sources_api
from ingest.http import DECODES, PRODUCER, REDIS, SETTINGS, error
from ingest.metrics import PUSH_REQUESTS, frame_sent

log = logging.getLogger(__name__)


def _param(request: web.Request, name: str, header: str) -> str | None:
    return request.query.get(name) or request.headers.get(header)


async def _read_limited(read: Any, limit: int) -> bytes:
    """All the bytes ``read()`` gives until it is empty, or ``limit + 1`` of them (so the
    decoder sees that the body was over the limit); one read returns only what is buffered."""
    chunks, size = [], 0
    while size <= limit:
        chunk = await read()
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[: limit + 1]


async def _body(request: web.Request, limit: int) -> bytes:
    """The image bytes: the raw body, or the first file part of a multipart body."""
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        async for part in reader:
            if isinstance(part, BodyPartReader):
                return await _read_limited(part.read_chunk, limit)
        return b""
    return await _read_limited(lambda: request.content.read(64 * 1024), limit)


async def push_frame(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    cfg = settings.ingest
    tenant = request[TENANT]
    stream_id = httpapi.ident(request.match_info["stream_id"], "stream id")
    account_id = _param(request, "account_id", "X-Account-Id")
    if not account_id:
        return error(400, "missing_account_id", "give account_id as query or X-Account-Id header")
    httpapi.ident(account_id, "account id")
    raw_time = _param(request, "captured_at", "X-Capture-Time")
    try:
        captured_at = fields.EPOCH.validate_python(float(raw_time) if raw_time else records.now())
    except (ValueError, ValidationError):
        return error(
            400,
            "bad_captured_at",
            "captured_at must be epoch seconds between 1970 and 2100, e.g. 1700000000.5",
        )
    session = _param(request, "session", "X-Stream-Session")
    if session is not None and len(session) > 64:
        return error(400, "bad_session", "session must be at most 64 characters")
    try:
        data = await httpapi.body_within(_body(request, cfg.push_max_bytes), cfg.body_timeout_s)
    except (HttpProcessingError, ValueError, AssertionError) as exc:  # malformed multipart
        return error(400, "bad_multipart", f"the multipart body cannot be parsed: {exc}")
    if not data:
        return error(400, "empty_body", "the body must be a JPEG, PNG or WebP image")
    async with request.app[DECODES]:  # bounded: each decode holds ~10 bytes a pixel
        try:
            rgb, _mime = await asyncio.to_thread(
                images.decode, data, max_bytes=cfg.push_max_bytes, max_pixels=cfg.push_max_pixels
            )
        except images.ImageRejected as exc:
            rejected: images.ImageRejected | None = exc
        else:
            rejected = None
            pdq, quality = await asyncio.to_thread(framedata.photo_pdq, rgb)
            jpeg = await asyncio.to_thread(
                framedata.thumbnail_jpeg, rgb, cfg.thumbnail_short_side, cfg.jpeg_quality
            )
            h, w = rgb.shape[:2]
            del rgb
    if rejected is not None:
        await _dead_letter(request, tenant, stream_id, rejected, data)
        return error(rejected.status, rejected.code, str(rejected))
    client = request.app[REDIS]
    skey = scope.key(tenant, stream_id)  # the tenant's stream: its ids are its own names
    seq = int(await client.incr(redisio.key(settings, "pushseq", skey))) - 1
    start_key = redisio.key(settings, "pushstart", skey)
    await client.set(start_key, captured_at, nx=True)
    start = float(await client.get(start_key) or captured_at)
    frame = records.Frame(
        # a retry is the same frame; the same picture in another life of the stream is not
        frame_id=records.stable_id(
            tenant, stream_id, hashlib.sha256(data).hexdigest(), *([session] if session else [])
        ),
        stream_id=stream_id,
        account_id=account_id,
        tenant=tenant,
        channel=request.query.get("channel") or request.headers.get("X-Channel"),
        session=session or None,
        seq=seq,
        pts=max(0.0, captured_at - start),
        captured_at=captured_at,
        sample_reason="push",
        width=w,
        height=h,
        pdq=pdq,
        pdq_quality=quality,
        jpeg=jpeg,
    )
    topic = settings.topics.name("frames")
    t0 = time.monotonic()
    try:
        await request.app[PRODUCER].send_and_wait(topic, frame.encode(), key=skey.encode())
    except Exception as exc:  # Kafka down: tell the client to retry (frame_id is stable)
        log.error("push: producing to %s failed: %s", topic, exc)
        return error(503, "unavailable", "could not store the frame; retry later")
    frame_sent(frame, topic, "push", time.monotonic() - t0)
    PUSH_REQUESTS.labels(status="202").inc()
    return web.json_response({"frame_id": frame.frame_id, "seq": seq}, status=202)


async def _dead_letter(
    request: web.Request, tenant: str, stream_id: str, exc: images.ImageRejected, data: bytes
) -> None:
    """A refused image leaves a dead-letter record (the body only when it is small), so a
    platform's bad pushes can be inspected later; the client has its 4xx already."""
    settings = request.app[SETTINGS]
    keep = len(data) <= settings.ingest.push_dead_letter_max_bytes
    dead = deadletter.build(
        "ingest", f"push_{exc.code}", f"tenant {tenant}: {exc}", payload=data if keep else None
    ).model_copy(update={"key": scope.key(tenant, stream_id)})
    try:
        await deadletter.send(request.app[PRODUCER], settings, dead)
    except Exception as e:  # Kafka down: the 4xx still goes out
        log.error("push: dead-lettering a refused image failed: %s", e)


def openapi(settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the push API."""
    err = {"$ref": "#/components/schemas/Error"}
    responses = {
        "202": {
            "description": "accepted; the frame is on the frames topic",
            "content": {"application/json": {"schema": {
                "type": "object", "required": ["frame_id"],
                "properties": {"frame_id": {"type": "string"}, "seq": {"type": "integer"}},
            }}},
        },
        **{
            str(code): {"description": text, "content": {"application/json": {"schema": err}}}
            for code, text in (
                (400, "missing or bad parameter"), (401, "missing or unknown API key"),
                (408, "the body did not arrive within ingest.body_timeout_s; the connection "
                      "is closed"),
                (413, "image over the byte or pixel limit"), (415, "not a JPEG/PNG/WebP image"),
                (422, "image could not be decoded, or a stream or account id that is not "
                      f"{fields.ID_RULE}"),
                (503, "Kafka or Redis unavailable; retry"),
            )
        },
    }  # fmt: skip
    params = [
        {"name": "stream_id", "in": "path", "required": True, "schema": fields.ID_SCHEMA},
        {"name": "account_id", "in": "query", "schema": fields.ID_SCHEMA,
         "description": "account of the stream (or header X-Account-Id); required"},
        {"name": "captured_at", "in": "query", "schema": {"type": "number"},
         "description": "capture time, epoch seconds (or header X-Capture-Time); default now"},
        {"name": "channel", "in": "query", "schema": {"type": "string"}},
        {"name": "session", "in": "query", "schema": {"type": "string", "maxLength": 64},
         "description": "this life of the stream (or header X-Stream-Session): send a new one "
                        "when the broadcast restarts and it is moderated as a new life"},
    ]  # fmt: skip
    image = {"schema": {"type": "string", "format": "binary"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "framewatch ingest push API", "version": "1"},
        "paths": {
            "/v1/streams/{stream_id}/frames": {
                "post": {
                    "summary": "push one frame of a live stream",
                    "security": [{"bearer": []}],
                    "parameters": params,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "image/jpeg": image,
                            "image/png": image,
                            "image/webp": image,
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"frame": {"type": "string", "format": "binary"}},
                                }
                            },
                        },
                    },
                    "responses": responses,
                }
            },
            **sources_api.openapi_paths(),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": httpapi.ERROR_SCHEMA,
                **httpapi.component_schemas(*sources_api.MODELS),
            },
        },
        "x-limits": {
            "max_bytes": settings.ingest.push_max_bytes,
            "max_pixels": settings.ingest.push_max_pixels,
        },
    }


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/streams/{stream_id}/frames", push_frame)
