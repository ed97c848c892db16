"""The reviewer's pages: queue, item view, claim, verdict, evidence frames, numbers."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from console import numbers
from console.index import Item, Page, is_sensitive
from framewatch import records
from framewatch.errors import FramewatchError
from framewatch.records import ReviewOutcome

if TYPE_CHECKING:
    from console.auth import User
    from console.web import Console

ACTIONS = {"uphold": "upheld", "overturn": "overturned", "escalate": "escalated"}


def _c(request: web.Request) -> Console:
    from console.web import CTX

    return request.app[CTX]


def _user(request: web.Request) -> User:
    from console.web import USER

    return request[USER]


def _csrf(request: web.Request) -> str:
    from console.web import CSRF

    return request[CSRF]


async def _appeal_items(c: Console, tenants: set[str] | None) -> list[Item]:
    out = []
    for a in await c.appeals.all(tenants):
        d = c.index.decisions.get(a["decision_id"])
        if a["status"] == "pending" and d is not None:
            out.append(Item("appeal", a["appeal_id"], d, a["created_at"],
                            c.settings.console.sla_appeal_s, a, c.index.audience(d)))  # fmt: skip
    return out


async def queue_page(
    c: Console, user: User, tenant: str | None = None, start: int = 0, stop: int | None = None
) -> Page:
    """The user's queue: their tenants (or the one picked), minus sensitive items at the cap."""
    tenants = user.tenant_set()
    if tenant:
        if not user.sees(tenant):
            return Page([], 0, 0)
        tenants = {tenant}
    cfg = c.settings.console
    skip = cfg.sensitive_categories if await c.work.at_cap(user.name) else None
    appeals = await _appeal_items(c, tenants)
    return c.index.queue(tenants, cfg.sla_live_s, appeals, skip, start, stop, time.time())


async def queue(request: web.Request) -> web.Response:
    c, user = _c(request), _user(request)
    tenant = request.query.get("tenant") or None
    size = c.settings.console.page_size
    raw_page = request.query.get("page", "0")
    page = int(raw_page) if raw_page.isdigit() else 0
    q = await queue_page(c, user, tenant, page * size, (page + 1) * size)
    holders = await c.work.holders([(i.tenant, i.item_id) for i in q.items])
    exposures = await c.work.exposures(user.name)
    tenants = sorted(user.tenants) if "*" not in user.tenants else sorted(c.index.tenants)
    return c.render(
        "queue.html",
        user=user,
        csrf=_csrf(request),
        rows=list(zip(q.items, holders, strict=True)),
        total=q.total,
        breached=q.breached,
        page=page,
        pages=max(1, -(-q.total // size)),
        tenant=tenant,
        tenants=tenants,
        now=time.time(),
        exposures=exposures,
        capped=exposures >= c.settings.console.exposure_cap_per_hour,
        viewers=c.index.viewers,
    )


async def queue_json(request: web.Request) -> web.Response:
    """``GET /api/queue[?tenant=&page=]``: the same queue as /queue, for scripts (the demo
    checks it); the session's login and tenant walls apply."""
    c, user = _c(request), _user(request)
    size = c.settings.console.page_size
    raw_page = request.query.get("page", "0")
    page = int(raw_page) if raw_page.isdigit() else 0
    q = await queue_page(c, user, request.query.get("tenant") or None, page * size,
                         (page + 1) * size)  # fmt: skip
    holders = await c.work.holders([(i.tenant, i.item_id) for i in q.items])
    now = time.time()
    rows = [
        {
            "tenant": i.tenant,
            "kind": i.kind,
            "item_id": i.item_id,
            "path": _path(i),
            "stream_id": i.decision.stream_id,
            "action": i.decision.action,
            "red_line": i.decision.red_line,
            "category": i.category,
            "age_s": round(i.age(now), 1),
            "sla_s": i.sla_s,
            "breached": i.breached(now),
            "claimed_by": h,
            "viewers": c.index.viewers.get((i.tenant, i.decision.stream_id)),
        }
        for i, h in zip(q.items, holders, strict=True)
    ]
    return web.json_response({"total": q.total, "breached": q.breached, "page": page,
                              "items": rows})  # fmt: skip


async def _item(request: web.Request) -> Item:
    """The item named in the path, if this user may see it (else 404: no hint it exists)."""
    c, user = _c(request), _user(request)
    kind, item_id = request.match_info["kind"], request.match_info["item_id"]
    tenant = request.match_info.get("tenant", "")
    if not user.sees(tenant):
        raise web.HTTPNotFound(text="no such item")
    if kind == "review":
        d = c.index.decisions.get(item_id)
        if d is None or d.tenant != tenant:
            raise web.HTTPNotFound(text="no such item")
        return Item("review", item_id, d, d.decided_at, c.settings.console.sla_live_s)
    if kind == "appeal":
        a = await c.appeals.get(tenant, item_id)
        d = c.index.decisions.get(a["decision_id"]) if a else None
        if a is None or d is None or d.tenant != tenant:
            raise web.HTTPNotFound(text="no such item")
        return Item("appeal", item_id, d, a["created_at"], c.settings.console.sla_appeal_s, a)
    raise web.HTTPNotFound(text="no such item")


async def item_view(request: web.Request) -> web.Response:
    c, user = _c(request), _user(request)
    it = await _item(request)
    d = it.decision
    cfg = c.settings.console
    if is_sensitive(d, cfg.sensitive_categories):
        await c.work.expose(user.name, it.item_id)
    try:
        manifest = c.evidence.manifest(d.tenant, d.decision_id, actor=user.name)
        evidence_error = None
    except FramewatchError as exc:
        manifest, evidence_error = None, str(exc)
    verdicts = c.index.verdicts.get(d.decision_id, [])
    return c.render(
        "item.html",
        user=user,
        csrf=_csrf(request),
        it=it,
        d=d,
        m=manifest,
        evidence_error=evidence_error,
        timeline=numbers.timeline(manifest, d),
        findings=numbers.findings(manifest),
        history=c.index.history(d.tenant, d.account_id),
        verdicts=verdicts,
        correction=c.index.corrections.get(d.decision_id),
        holder=await c.work.holder(d.tenant, it.item_id),
        now=time.time(),
        reason_codes=cfg.reason_codes,
        blocked_reviewers=_earlier_reviewers(verdicts) if it.kind == "appeal" else set(),
    )


def _earlier_reviewers(verdicts: list[ReviewOutcome]) -> set[str]:
    return {v.reviewer for v in verdicts if v.reviewer}


async def claim(request: web.Request) -> web.Response:
    c, user = _c(request), _user(request)
    it = await _item(request)
    _refuse_earlier_reviewer(c, it, user)
    holder = await c.work.claim(it.tenant, it.item_id, user.name)
    if holder != user.name:
        raise web.HTTPConflict(text=f"{holder} has claimed this item; pick another from the queue")
    raise web.HTTPSeeOther(_path(it))


def _refuse_earlier_reviewer(c: Console, it: Item, user: User) -> None:
    if it.kind != "appeal":
        return
    if user.name in _earlier_reviewers(c.index.verdicts.get(it.decision.decision_id, [])):
        raise web.HTTPForbidden(
            text="you reviewed this decision before: an appeal goes to a different reviewer"
        )


def _path(it: Item) -> str:
    return f"/items/{it.tenant}/{it.kind}/{it.item_id}"


async def verdict(request: web.Request) -> web.Response:
    """Uphold, overturn or escalate: one ReviewOutcome on the reviews topic, with the
    reviewer's id; the item must be claimed by this reviewer (claimed now if free)."""
    c, user = _c(request), _user(request)
    it = await _item(request)
    form = await request.post()
    action = str(form.get("action", ""))
    if action not in ACTIONS:
        raise web.HTTPBadRequest(text="action must be uphold, overturn or escalate")
    code = str(form.get("reason_code", "") or "")
    note = str(form.get("note", "") or "").strip()[:1500]
    if action == "overturn" and code not in c.settings.console.reason_codes:
        raise web.HTTPBadRequest(text="pick a reason code to overturn")
    _refuse_earlier_reviewer(c, it, user)
    holder = await c.work.claim(it.tenant, it.item_id, user.name)
    if holder != user.name:
        raise web.HTTPConflict(text=f"{holder} has claimed this item; it is theirs to decide")
    d = it.decision
    tag = f"[appeal {it.item_id}] " if it.kind == "appeal" else ""
    text = f"{tag}[{code}] {note}".strip() if code else f"{tag}{note}".strip()
    outcome = ACTIONS[action]
    rv = ReviewOutcome(
        # the id streams/review.py gives the same verdict (tests/console/test_report.py checks)
        review_id=records.stable_id(
            "review", d.decision_id, outcome, *([it.item_id] if it.kind == "appeal" else [])
        ),
        decision_id=d.decision_id,
        stream_id=d.stream_id,
        account_id=d.account_id,
        tenant=d.tenant,
        outcome=outcome,  # type: ignore[arg-type]
        action=d.action if d.action in ("block", "review") else None,  # type: ignore[arg-type]
        category=d.reasons[0].category if d.reasons else None,
        reviewer=user.name,
        note=text or None,
        appeal_id=it.item_id if it.kind == "appeal" else None,
        resolved_at=records.now(),
    )
    await c.send_review(rv)
    if it.kind == "appeal":
        await c.appeals.decide(it.tenant, it.item_id, outcome, user.name)
    await c.work.release(it.tenant, it.item_id)
    raise web.HTTPSeeOther(f"/queue?done={it.item_id}")


async def frame(request: web.Request) -> web.Response:
    c, user = _c(request), _user(request)
    tenant = request.match_info["tenant"]
    if not user.sees(tenant):
        raise web.HTTPNotFound(text="no such frame")
    try:
        data = c.evidence.frame(tenant, request.match_info["decision_id"],
                                request.match_info["sha"], actor=user.name)  # fmt: skip
    except FramewatchError:
        raise web.HTTPNotFound(text="no such frame") from None
    return web.Response(body=data, content_type="image/jpeg",
                        headers={"Cache-Control": "private, no-store"})  # fmt: skip


async def numbers_page(request: web.Request) -> web.Response:
    c, user = _c(request), _user(request)
    stats: dict[str, Any] = await numbers.compute(c, user.tenant_set())
    return c.render("numbers.html", user=user, csrf=_csrf(request), s=stats)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/queue", queue)
    app.router.add_get("/api/queue", queue_json)
    app.router.add_get("/numbers", numbers_page)
    app.router.add_get("/items/{tenant}/{kind}/{item_id}", item_view)
    app.router.add_post("/items/{tenant}/{kind}/{item_id}/claim", claim)
    app.router.add_post("/items/{tenant}/{kind}/{item_id}/verdict", verdict)
    app.router.add_get("/evidence/{tenant}/{decision_id}/{sha}", frame)
