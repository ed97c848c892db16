"""`framewatch console`: the reviewer console, an aiohttp app with server-rendered pages.

It reads decisions, verdicts and enforcement (console/tail.py) and evidence (framewatch/
evidence.py), and writes only ReviewOutcome records to the reviews topic, so the streams
worker's rollback, corrected statements and audit chain work as for `review resolve`. Console
state (users, sessions, claims, exposure counts, appeals) lives in Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from prometheus_client import Counter

from console import numbers
from console.appeals import Appeals
from console.auth import Auth, User, csrf_ok
from console.index import Index
from console.tail import Tailer
from console.throttle import LoginThrottle
from console.viewers import Viewers
from console.workload import Workload
from framewatch import kafkaio, metrics, records, redisio, scope
from framewatch.errors import FramewatchError
from framewatch.evidence import EvidenceStore
from framewatch.metrics import stage_registry
from framewatch.records import ReviewOutcome
from framewatch.settings import Settings
from framewatch.tasks import cancel_and_wait

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
COOKIE = "fw_session"
LOGIN_CSRF = "fw_login_csrf"
PUBLIC = ("/login", "/static/", "/v1/", "/healthz")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONSOLE_LOG = "_console"  # the access log of logins that name no tenant
LOGINS = Counter(
    "framewatch_console_logins_total",
    "console login attempts: login, login_failed, login_throttled",
    ["outcome"],
    registry=stage_registry("console"),
)
CTX: web.AppKey[Console] = web.AppKey("console")
USER: web.RequestKey[User] = web.RequestKey("user")
CSRF: web.RequestKey[str] = web.RequestKey("csrf")


class Console:
    """Everything a request handler needs, built once per app."""

    def __init__(self, settings: Settings, index: Index | None = None) -> None:
        self.settings = settings
        self.index = index or Index()
        self.redis = redisio.async_client(settings)
        self.auth = Auth(settings, self.redis)
        self.throttle = LoginThrottle(settings, self.redis)
        self.work = Workload(settings, self.redis)
        self.appeals = Appeals(settings, self.redis)
        self.viewers = Viewers(settings, self.redis)
        self.evidence = EvidenceStore.from_settings(settings)
        self.tailer = Tailer(settings, self.index, self.forget_account)
        self.producer: Any = None
        self.jinja = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.jinja.filters["ago"] = numbers.ago
        self.jinja.filters["ts"] = numbers.ts

    async def forget_account(self, rec: Any, decision_ids: list[str]) -> None:
        """An erased account (a forget record read by the tailer): its appeals go."""
        n = await self.appeals.forget(rec.tenant, decision_ids)
        log.info("account erased (%s): %d appeal(s) dropped, review notes hidden", rec.forget_id, n)

    def render(self, name: str, **ctx: Any) -> web.Response:
        body = self.jinja.get_template(name).render(settings=self.settings.console, **ctx)
        return web.Response(text=body, content_type="text/html")

    async def send_review(self, rv: ReviewOutcome) -> None:
        topic = self.settings.topics.name("reviews")
        # keyed like the stream's scores, so the worker holding its state gets the verdict
        await self.producer.send_and_wait(topic, records.encode(rv), key=scope.stream(rv).encode())
        self.index.add_review(rv)


@web.middleware
async def security(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Login for every page but the public ones, CSRF on every state change, strict headers
    on every answer (redirects and errors too)."""
    try:
        resp = await _guarded(request, handler)
    except web.HTTPException as exc:
        _harden(exc.headers, request.path)
        raise
    _harden(resp.headers, request.path)
    return resp


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    c = request.app[CTX]
    path = request.path
    if not path.startswith(PUBLIC) and path != "/":
        got = await c.auth.session(request.cookies.get(COOKIE))
        if got is None:
            if request.method == "GET":
                raise web.HTTPSeeOther(f"/login?next={path}")
            raise web.HTTPUnauthorized(text="log in again: your session ended")
        request[USER], request[CSRF] = got
        if request.method == "POST":
            form = await request.post()
            presented = request.headers.get("X-CSRF-Token") or form.get("csrf")
            if not csrf_ok(got[1], presented if isinstance(presented, str) else None):
                raise web.HTTPForbidden(text="missing or wrong CSRF token: reload the page")
    return await handler(request)


def _harden(headers: Any, path: str) -> None:
    headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self'; script-src 'self'; style-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'",
    )
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if not path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")


# ------------------------------------------------------------------------------- login
async def login_page(request: web.Request) -> web.Response:
    import secrets

    c = request.app[CTX]
    # keep a token already given: a second tab (or the favicon's redirect) must not void it
    token = request.cookies.get(LOGIN_CSRF) or secrets.token_urlsafe(24)
    resp = c.render("login.html", csrf=token, error=None, next=_next(request))
    _cookie(resp, c, LOGIN_CSRF, token, max_age=900)
    return resp


async def login(request: web.Request) -> web.Response:
    c = request.app[CTX]
    form = await request.post()
    token = request.cookies.get(LOGIN_CSRF)
    if not token or not csrf_ok(token, str(form.get("csrf", ""))):
        raise web.HTTPForbidden(text="login form expired: reload the login page")
    name, address = str(form.get("name", ""))[:200], request.remote or "unknown"
    known = await c.auth.user(name)
    tenants = known.tenants if known else []
    stop = await c.throttle.check(name, address, tenants)
    if stop is not None:
        _audit_login(c, name, tenants, "login_throttled", address)
        resp = c.render("login.html", csrf=token, error=stop.message, next="/queue")
        resp.set_status(429)
        resp.headers["Retry-After"] = str(stop.retry_after_s)
        return resp
    user = await c.auth.check_password(name, str(form.get("password", "")))
    if user is None:
        await c.throttle.failed(name, address)
        _audit_login(c, name, tenants, "login_failed", address)
        resp = c.render("login.html", csrf=token, error="wrong name or password", next="/queue")
        resp.set_status(401)
        return resp
    await c.throttle.succeeded(name)
    _audit_login(c, name, tenants, "login", address)
    session, _csrf = await c.auth.start_session(user)
    resp = web.HTTPSeeOther(_next(request, str(form.get("next", ""))))
    _cookie(resp, c, COOKIE, session, max_age=c.settings.console.session_ttl_s)
    resp.del_cookie(LOGIN_CSRF)
    raise resp


def _audit_login(c: Console, name: str, tenants: list[str], what: str, address: str) -> None:
    """Logins, failures and refusals go to each of the user's tenants' access logs (names
    that are no user, and admins of every tenant, to ``_console``), and to the log."""
    LOGINS.labels(outcome=what).inc()
    if what != "login":
        log.warning("console %s for user name %r from %s", what.replace("_", " "), name, address)
    for tenant in [t for t in tenants if t != "*"] or [CONSOLE_LOG]:
        try:
            c.evidence.log_access(tenant, name, what, "", address)
        except (OSError, FramewatchError) as exc:  # the store is down: answer the login anyway
            log.error("could not write the login audit line for %r: %s", name, exc)


async def logout(request: web.Request) -> web.Response:
    c = request.app[CTX]
    await c.auth.end_session(request.cookies.get(COOKIE, ""))
    resp = web.HTTPSeeOther("/login")
    resp.del_cookie(COOKIE)
    raise resp


def _next(request: web.Request, given: str = "") -> str:
    n = given or request.query.get("next", "/queue")
    # only a path on this site: "//host" and "/\\host" would leave it
    return n if n.startswith("/") and not n.startswith("//") and "\\" not in n else "/queue"


def _cookie(resp: web.StreamResponse, c: Console, name: str, value: str, max_age: int) -> None:
    resp.set_cookie(name, value, max_age=max_age, httponly=True, samesite="Strict",
                    secure=c.settings.console.secure_cookies, path="/")  # fmt: skip


# ------------------------------------------------------------------------------- app
async def home(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/queue")


async def healthz(request: web.Request) -> web.Response:
    ready = request.app[CTX].tailer.ready.is_set()
    return web.json_response({"ok": True, "caught_up": ready}, status=200 if ready else 503)


async def refresh_metrics(c: Console) -> None:
    """Recompute the numbers gauges now and then: /metrics is served on the metrics port
    (settings.metrics.console_port, an internal address), like every stage's, not here."""
    while True:
        try:
            await numbers.refresh_gauges(c)
        except Exception as exc:  # Redis away: the gauges wait for the next round
            log.warning("could not refresh the console's gauges: %s", exc)
        await asyncio.sleep(c.settings.console.metrics_refresh_s)


async def refresh_viewers(c: Console) -> None:
    """Re-read the reported viewer counts (any replica may have taken the report)."""
    while True:
        try:
            c.index.set_viewers(await c.viewers.all(time.time()))
        except Exception as exc:  # Redis away: the queue keeps the last counts
            log.warning("could not read the streams' viewer counts: %s", exc)
        await asyncio.sleep(c.settings.console.viewers_refresh_s)


async def _startup(app: web.Application) -> None:
    c = app[CTX]
    c.producer = kafkaio.producer(c.settings)
    await c.producer.start()
    app["tail_task"] = asyncio.create_task(c.tailer.run())
    app["viewers_task"] = asyncio.create_task(refresh_viewers(c))
    m = c.settings.metrics
    if m.enabled:
        metrics.serve("console", m.host, m.console_port, m.port_dir)
        app["metrics_task"] = asyncio.create_task(refresh_metrics(c))


async def _cleanup(app: web.Application) -> None:
    c = app[CTX]
    c.tailer.stop()
    await cancel_and_wait([app.get("metrics_task"), app.get("viewers_task")], what="console loop")
    tail = app.get("tail_task")
    if tail is not None:  # ends on tailer.stop()
        await asyncio.gather(tail, return_exceptions=True)
    if c.producer is not None:
        await c.producer.stop()
    await c.redis.aclose()


def build_app(settings: Settings, index: Index | None = None, tail: bool = True) -> web.Application:
    from console import api, pages

    app = web.Application(middlewares=[security], client_max_size=1024 * 1024)
    c = Console(settings, index)
    app[CTX] = c
    app.router.add_get("/", home)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/healthz", healthz)
    pages.add_routes(app)
    api.add_routes(app)
    app.router.add_static("/static/", HERE / "static")
    if tail:
        app.on_startup.append(_startup)
    app.on_cleanup.append(_cleanup)
    return app
