"""The ingest HTTP server: the frame push API and the sources API on one aiohttp app."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from aiohttp import web
from aiokafka import AIOKafkaProducer

from framewatch.settings import Settings
from ingest import push, sources_api
from ingest.http import DECODES, PRODUCER, REDIS, SETTINGS, middleware


def make_app(
    settings: Settings, producer: AIOKafkaProducer, client: aioredis.Redis
) -> web.Application:
    app = web.Application(
        client_max_size=settings.ingest.push_max_bytes + 64 * 1024,
        middlewares=[middleware()],
    )
    app[SETTINGS], app[PRODUCER], app[REDIS] = settings, producer, client
    app[DECODES] = asyncio.Semaphore(settings.ingest.push_max_concurrent_decodes)
    doc = push.openapi(settings)

    async def openapi_json(_request: web.Request) -> web.Response:
        return web.json_response(doc)

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    push.add_routes(app)
    sources_api.add_routes(app)
    app.router.add_get("/openapi.json", openapi_json)
    app.router.add_get("/healthz", healthz)
    return app
