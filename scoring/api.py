"""Synchronous check API (aiohttp): POST /v1/check and OpenAI-compatible POST /v1/moderations.

Both decide with the live policy (:mod:`scoring.check`). Requests carry a tenant's API key, the
same keys as the push API (`framewatch apikeys add`), unless `scoring.check_require_api_key`
is off. The work a request can cause is bounded: body bytes, parts a request, parts scored at
once, and requests and bytes in flight per key (429 beyond). When the client goes away, the
parts not yet started are skipped. Errors have OpenAI's shape,
``{"error": {"message", "type", "param", "code"}}``, on both endpoints.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections import Counter as Tally
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import Counter, Gauge
from pydantic import ValidationError

from framewatch import apikeys, httpapi, redisio
from framewatch.errors import FramewatchError
from framewatch.metrics import stage_registry
from framewatch.settings import Settings
from framewatch.tasks import cancel_and_wait
from scoring import banks, openai_compat
from scoring.api_doc import CheckQuery, CheckUrl, openapi
from scoring.check import CheckCancelled, Checker, load_policy
from scoring.fetch import UrlRefused, fetch_image
from scoring.openai_compat import IMAGE, InputError, Part
from scoring.scorer import Scorer

log = logging.getLogger(__name__)
_REG = stage_registry("scoring")  # the check API is a scoring command: its /metrics
PARTS = Counter(
    "framewatch_check_parts_total", "check API parts, by outcome", ["outcome"], registry=_REG
)
IN_FLIGHT = Gauge(
    "framewatch_check_requests_in_flight", "check API requests being worked on", registry=_REG
)
REFUSED = Counter(
    "framewatch_check_refused_total", "check API requests refused", ["reason"], registry=_REG
)
for _o in ("scored", "failed", "cancelled"):
    PARTS.labels(outcome=_o)
for _r in ("unauthorized", "busy", "too_large", "bad_request", "slow_body"):
    REFUSED.labels(reason=_r)
CHECK_API: web.AppKey[CheckApi] = web.AppKey("check_api")
# status -> OpenAI error type
_TYPES = {400: "invalid_request_error", 401: "invalid_request_error",
          408: "invalid_request_error", 413: "invalid_request_error", 422: "invalid_request_error",
          429: "rate_limit_exceeded", 500: "server_error"}  # fmt: skip


class Refused(FramewatchError):
    """A request answered with an error: HTTP status, OpenAI code and param."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 param: str | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.code, self.param = status, code, param


def error(
    status: int, message: str, code: str | None = None, param: str | None = None
) -> web.Response:
    body = {"message": message, "type": _TYPES.get(status, "invalid_request_error"),
            "param": param, "code": code}  # fmt: skip
    return web.json_response({"error": body}, status=status)


class CheckApi:
    def __init__(self, settings: Settings, scorer: Scorer, checker: Checker | None = None) -> None:
        self.s = settings
        self.sc = settings.scoring
        self.checker = checker or Checker(settings, scorer)
        self.scorer = scorer
        self.executor = ThreadPoolExecutor(scorer.inference_threads(), thread_name_prefix="check")
        self.redis: aioredis.Redis | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.requests_by_key: Tally[str] = Tally()
        self.bytes_by_key: Tally[str] = Tally()

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self, _app: web.Application) -> None:
        """Load OCR now (no request pays its start-up) and start watching banks and policy."""
        await asyncio.get_running_loop().run_in_executor(None, lambda: self.checker.ocr)
        self.redis = redisio.async_client(self.s)
        store = banks.BankStore(self.s)
        self.tasks = [asyncio.create_task(banks.watch(self.s, store, self._set_index)),
                      asyncio.create_task(self._reload_policy())]  # fmt: skip

    async def stop(self, _app: web.Application) -> None:
        await cancel_and_wait(self.tasks, timeout_s=5, what="bank or policy watcher")
        if self.redis is not None:
            await self.redis.aclose()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _set_index(self, index: banks.BankIndex) -> None:
        self.checker.index = index
        log.info("check API: hash banks loaded, %d hashes", len(index))

    async def _reload_policy(self) -> None:
        """Pick up edited policy files as the streams worker does; a bad file keeps the old."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.s.streams.reload_interval_s)
            try:
                new = await loop.run_in_executor(None, load_policy, self.s)
            except Exception as e:  # any refusal leaves the running policy in force
                log.error("check API: policy refused, keeping %s: %s",
                          self.checker.policy.version, e)  # fmt: skip
                continue
            if new.version != self.checker.policy.version:
                log.info("check API: policy %s -> %s", self.checker.policy.version, new.version)
                self.checker.policy = new

    # -- admission --------------------------------------------------------------------------
    async def _tenant(self, req: web.Request, q: CheckQuery) -> tuple[str | None, str]:
        """(tenant, the key's identity for the per-key limits)."""
        if not self.sc.check_require_api_key:
            tenant = q.tenant or "default"  # as a frame pushed without one
            return tenant, f"tenant:{tenant}"
        key = apikeys.bearer(req.headers.get("Authorization"))
        if key is None:
            raise Refused(401, "send a tenant's API key as 'Authorization: Bearer KEY' "
                          "(`framewatch apikeys add TENANT`)", "missing_api_key")  # fmt: skip
        assert self.redis is not None
        tenant = await apikeys.tenant_of(self.s, self.redis, key)
        if tenant is None:
            raise Refused(401, "unknown API key; create one with `framewatch apikeys add`",
                          "invalid_api_key")  # fmt: skip
        if q.tenant not in (None, tenant):
            raise Refused(400, "?tenant= must be the API key's own tenant (or left out)",
                          param="tenant")  # fmt: skip
        return tenant, apikeys.digest(key)

    @asynccontextmanager
    async def _admit(self, who: str, nbytes: int) -> AsyncIterator[None]:
        if nbytes > self.sc.check_max_request_bytes:
            raise Refused(413, f"body over {self.sc.check_max_request_bytes} bytes; send less",
                          "request_too_large")  # fmt: skip
        if (self.requests_by_key[who] >= self.sc.check_max_requests_per_key
                or self.bytes_by_key[who] + nbytes > self.sc.check_max_bytes_per_key):  # fmt: skip
            raise Refused(429, f"this key has {self.requests_by_key[who]} requests in flight "
                          f"(at most {self.sc.check_max_requests_per_key}, "
                          f"{self.sc.check_max_bytes_per_key} bytes); retry when they finish",
                          "rate_limit_exceeded")  # fmt: skip
        self.requests_by_key[who] += 1
        self.bytes_by_key[who] += nbytes
        IN_FLIGHT.inc()
        try:
            yield
        finally:
            IN_FLIGHT.dec()
            self.requests_by_key[who] -= 1
            self.bytes_by_key[who] -= nbytes
            if self.requests_by_key[who] <= 0:
                del self.requests_by_key[who], self.bytes_by_key[who]

    async def _serve(
        self, req: web.Request,
        work: Callable[[web.Request, str | None, str | None, threading.Event], Awaitable[Any]],
    ) -> web.Response:  # fmt: skip
        """Authenticate, admit, run `work`, and answer every refusal in OpenAI's shape."""
        cancel = threading.Event()
        try:
            q = _query(req)
            tenant, who = await self._tenant(req, q)
            channel = q.channel
            async with self._admit(who, req.content_length or self.sc.check_max_request_bytes):
                return web.json_response(await work(req, tenant, channel, cancel))
        except Refused as e:
            REFUSED.labels(reason={401: "unauthorized", 429: "busy", 413: "too_large"}.get(
                e.status, "bad_request")).inc()  # fmt: skip
            return error(e.status, str(e), e.code, e.param)
        except web.HTTPRequestEntityTooLarge:
            REFUSED.labels(reason="too_large").inc()
            return error(413, f"body over {self.sc.check_max_request_bytes} bytes; send less",
                         "request_too_large")  # fmt: skip
        except InputError as e:
            REFUSED.labels(reason="bad_request").inc()
            return error(400, str(e), "invalid_input", e.param)
        except UrlRefused as e:
            return error(400, str(e), "image_url_refused", "input")
        except CheckCancelled as e:
            return error(400, str(e), "cancelled")  # nobody reads it: the client has gone
        except httpapi.HttpError as e:  # the body did not arrive in time: answer and hang up
            REFUSED.labels(reason="slow_body").inc()
            return await httpapi.hang_up(req, error(e.status, str(e), e.code))
        except FramewatchError as e:  # the image cannot be decoded, or is too large
            return error(422 if req.path == "/v1/check" else 400, str(e), "invalid_image", "input")
        except asyncio.CancelledError:
            cancel.set()  # the client went away: parts not yet started are skipped
            raise

    async def _read(self, req: web.Request) -> bytes:
        return await httpapi.body_within(req.read(), self.sc.check_body_timeout_s)

    async def _json(self, req: web.Request) -> Any:
        raw = await self._read(req)
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested too deep to be a request
            raise InputError("body is not JSON (or nested too deeply)", None) from None

    async def _run(
        self, req: web.Request, cancel: threading.Event, fn: Callable[..., Any], *args: Any
    ) -> Any:
        """One part in the executor, unless the client has gone or the request was cancelled."""
        transport = req.transport
        if cancel.is_set() or transport is None or transport.is_closing():
            cancel.set()
            PARTS.labels(outcome="cancelled").inc()
            raise CheckCancelled("the client went away; check stopped")
        try:
            out = await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
        except CheckCancelled:
            PARTS.labels(outcome="cancelled").inc()
            raise
        except Exception:
            PARTS.labels(outcome="failed").inc()
            raise
        PARTS.labels(outcome="scored").inc()
        return out

    async def _part(self, req: web.Request, p: Part, tenant: str | None,
                    channel: str | None, cancel: threading.Event) -> tuple[str, dict[str, Any]]:  # fmt: skip
        if p.kind == IMAGE:
            data = await fetch_image(p.value, self.s)
            img = await self._run(req, cancel, self.checker.image, data, tenant, channel, cancel)
            return IMAGE, img
        return p.kind, await self._run(req, cancel, self.checker.text, p.value, tenant, channel)

    # -- endpoints --------------------------------------------------------------------------
    async def check(self, req: web.Request) -> web.Response:
        return await self._serve(req, self._check)

    async def _check(self, req: web.Request, tenant: str | None, channel: str | None,
                     cancel: threading.Event) -> dict[str, Any]:  # fmt: skip
        if req.content_type == "application/json":
            try:
                body = CheckUrl.model_validate(await self._json(req))
            except ValidationError:
                raise InputError('send image bytes, or JSON {"image_url": "https://..."} '
                                 "(no other field)", "image_url") from None  # fmt: skip
            data = await fetch_image(body.image_url, self.s)
        else:
            data = await self._read(req)
        return await self._run(req, cancel, self.checker.image, data, tenant, channel, cancel)

    async def moderations(self, req: web.Request) -> web.Response:
        return await self._serve(req, self._moderations)

    async def _moderations(self, req: web.Request, tenant: str | None, channel: str | None,
                           cancel: threading.Event) -> dict[str, Any]:  # fmt: skip
        inputs = openai_compat.parse(await self._json(req), self.sc.check_max_parts,
                                     self.sc.check_max_text_chars)  # fmt: skip
        if sum(len(i) for i in inputs) > self.sc.check_max_parts:
            raise InputError(f"at most {self.sc.check_max_parts} parts a request (split it)")
        gate = asyncio.Semaphore(self.sc.check_part_concurrency)

        async def one(p: Part) -> tuple[str, dict[str, Any]]:
            async with gate:
                return await self._part(req, p, tenant, channel, cancel)

        tasks = [[asyncio.ensure_future(one(p)) for p in parts] for parts in inputs]
        try:
            done = [await asyncio.gather(*ts) for ts in tasks]
        finally:  # one part failed or the client went away: start no other part
            pending = [t for ts in tasks for t in ts if not t.done()]
            if pending:
                cancel.set()
                with suppress(BaseException):
                    await cancel_and_wait(pending, what="check part")
        results = []
        policy = self.checker.policy
        for parts in done:
            scores: dict[str, float] = {}
            matches: list[dict[str, Any]] = []
            for _, r in parts:
                for k, v in r["scores"].items():
                    scores[k] = max(v, scores.get(k, 0.0))
                matches += r["hash_matches"]
            verdict = self.checker.decide(scores, matches, tenant, channel)
            ours = {"decision": verdict.action, "rationale": verdict.rationale,
                    "red_line": verdict.red_line, "scores": scores, "hash_matches": matches,
                    "policy": {"version": policy.version, "tenant": tenant, "channel": channel},
                    "parts": [{"type": k, **r} for k, r in parts]}  # fmt: skip
            results.append(openai_compat.result(parts, policy, tenant, channel, ours))
        return {"id": f"modr-{uuid.uuid4().hex}", "model": self.scorer.model_set or "framewatch",
                "results": results}  # fmt: skip


def _query(req: web.Request) -> CheckQuery:
    """The query, as the document lists it: an unknown or repeated parameter is refused."""
    try:
        if len(req.query) != len(set(req.query)):
            raise InputError("give each query parameter once", None)
        return httpapi.query(CheckQuery, req.query)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else None
        known = ", ".join(CheckQuery.model_fields)
        raise InputError(f"query parameter {name!r}: {err['msg']} (known: {known})",
                         name) from None  # fmt: skip


def app(settings: Settings, scorer: Scorer, checker: Checker | None = None) -> web.Application:
    api = CheckApi(settings, scorer, checker)
    a = web.Application(client_max_size=settings.scoring.check_max_request_bytes)
    a[CHECK_API] = api
    a.on_startup.append(api.start)
    a.on_cleanup.append(api.stop)
    a.router.add_post("/v1/check", api.check)
    a.router.add_post("/v1/moderations", api.moderations)
    doc = openapi()
    a.router.add_get("/openapi.json", lambda _r: web.json_response(doc))
    return a


def serve(settings: Settings, scorer: Scorer) -> None:
    """`framewatch check-api`: handlers are cancelled when their client disconnects."""
    sc = settings.scoring
    web.run_app(app(settings, scorer), host=sc.http_host, port=sc.http_port,
                handler_cancellation=True)  # fmt: skip
