"""One error envelope and one aiohttp middleware for framewatch's own HTTP APIs.

Every error answer is ``{"error": "<stable code>", "message": "<what to do>"}`` (ERROR_SCHEMA in
the OpenAPI documents). The middleware authenticates (a stage's ``Auth`` callable: the caller's
tenant, or None for a 401), turns ``HttpError`` and aiohttp's own 4xx (unknown route, body too
large) into the envelope, and Redis unreachable (keys, owners, incidents) into a retryable 503
rather than a 500. The OpenAI-compatible route keeps OpenAI's error shape and does not use it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import redis
from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from framewatch import fields
from framewatch.errors import FramewatchError

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "a stable code, e.g. unauthorized"},
        "message": {"type": "string", "description": "what went wrong and what to do"},
    },
}
TENANT = web.RequestKey("tenant", str)  # set by the middleware for authenticated routes
Auth = Callable[[web.Request], Awaitable[str | None]]
_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
T = TypeVar("T")


class HttpError(FramewatchError):
    """Raise from a handler to answer ``status`` with the envelope; ``close``: then hang up
    (the client is still sending a body nobody will read)."""

    def __init__(self, status: int, code: str, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status, self.code, self.close = status, code, close


async def body_within(read: Awaitable[T], timeout_s: float) -> T:
    """A request body read that must end within ``timeout_s`` in all (not per chunk: a client
    trickling a byte a second never trips a per-read timeout); past it, 408 and hang up."""
    try:
        async with asyncio.timeout(timeout_s):
            return await read
    except TimeoutError:
        raise HttpError(
            408,
            "body_timeout",
            f"the request body did not arrive within {timeout_s:g} s; send it at once "
            "(the connection is closed)",
            close=True,
        ) from None


async def hang_up(request: web.Request, resp: web.Response) -> web.Response:
    """Send ``resp`` now, then close the connection: no lingering read of a body nobody wants
    (aiohttp would otherwise drain it to keep the connection alive)."""
    await resp.prepare(request)
    await resp.write_eof()
    if request.protocol is not None:
        request.protocol.force_close()
    return resp


def ident(value: str, what: str) -> str:
    """A client's id (stream, account, reviewer) checked where it enters: 422 naming the rule."""
    try:
        return fields.ident(value, what)
    except fields.BadIdError as exc:
        raise HttpError(422, f"bad_{what.replace(' ', '_')}", str(exc)) from None


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def middleware(
    *,
    auth: Auth | None = None,
    unauthorized: str = "send an API key as 'Authorization: Bearer KEY'",
    public: Iterable[str] = ("/healthz", "/openapi.json"),
    on_error: Callable[[int], None] | None = None,
) -> Any:
    """The middleware of one app. ``auth`` runs before the handler (so no body is read for an
    unauthenticated caller) on every route but ``public``; ``on_error`` sees each status the
    middleware answers itself (a stage's request counter)."""
    open_paths = frozenset(public)

    def answer(status: int, code: str, message: str) -> web.Response:
        if on_error is not None:
            on_error(status)
        return error_response(status, code, message)

    @web.middleware
    async def handle(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            if auth is not None and request.path not in open_paths:
                tenant = await auth(request)
                if tenant is None:
                    return answer(401, "unauthorized", unauthorized)
                request[TENANT] = tenant
            return await handler(request)
        except HttpError as exc:
            resp = answer(exc.status, exc.code, str(exc))
            return await hang_up(request, resp) if exc.close else resp
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return answer(exc.status, _CODES.get(exc.status, "http_error"), exc.reason)
        except (redis.RedisError, OSError) as exc:
            log.error("%s %s: Redis unavailable: %s", request.method, request.path, exc)
            return answer(503, "unavailable", "key store unavailable; retry later")

    return handle


def component_schemas(*models: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI ``components.schemas`` generated from request/response models (refs as
    ``#/components/schemas/<Model>``): the documents and the validation are the same code."""
    _, defs = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
    )
    return dict(defs.get("$defs", {}))


def ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def json_content(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": ref(model)}}


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """OpenAPI ``in: query`` parameters generated from the model a handler validates its query
    with (``query``): the document lists exactly the parameters the handler accepts."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema["properties"].items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        param |= {k: prop.pop(k) for k in list(prop) if k.startswith("x-")}  # extensions
        desc = prop.pop("description", None)
        prop.pop("title", None)
        if prop.get("default", 0) is None:
            del prop["default"]  # left out, not null: a query has no null
        alts = [a for a in prop.pop("anyOf", ()) if a != {"type": "null"}]
        param["schema"] = {**(alts[0] if len(alts) == 1 else {"anyOf": alts} if alts else {}),
                           **prop}  # fmt: skip
        if desc:
            param["description"] = desc
        out.append(param)
    return out


def query(model: type[M], values: Mapping[str, str]) -> M:
    """The query (``values``: the request's query, or that merged with header alternatives)
    validated by ``model``: an unknown or malformed parameter raises ValidationError."""
    return model.model_validate({k: v for k, v in values.items() if v != ""})


def invalid(exc: ValidationError) -> HttpError:
    """A 400 naming the first field that is wrong and why."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "the body"
    return HttpError(400, "bad_request", f"{where}: {err['msg']}")
