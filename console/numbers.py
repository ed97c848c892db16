"""Numbers that keep a review programme honest, for the numbers page and ``/metrics``;
plus the small view helpers the item page draws (score timeline, findings)."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from prometheus_client import Gauge

from framewatch.metrics import stage_registry
from framewatch.records import Decision, ReviewOutcome

if TYPE_CHECKING:
    from console.web import Console

_REG = stage_registry("console")  # the console's /metrics only


def _gauge(name: str, doc: str, labels: list[str]) -> Gauge:
    return Gauge(name, doc, labels, registry=_REG)


G_BACKLOG = _gauge("framewatch_console_backlog", "pending review items", ["tenant"])
G_OLDEST = _gauge("framewatch_console_backlog_oldest_seconds", "age of the oldest item", ["tenant"])
G_SLA = _gauge("framewatch_console_sla_compliance", "share of verdicts within the SLA", ["tenant"])
G_REVERSAL = _gauge("framewatch_console_reversal_rate", "overturned / reviewed", ["tenant"])
G_PRECISION = _gauge(
    "framewatch_console_precision", "upheld / reviewed per category", ["tenant", "category"]
)
G_C2A = _gauge(
    "framewatch_console_capture_to_action_seconds",
    "capture to action (automated decisions and verdicts)",
    ["tenant", "quantile"],
)
G_APPEAL = _gauge("framewatch_console_appeal_turnaround_seconds", "median appeal time", ["tenant"])
G_STATEMENT = _gauge(
    "framewatch_console_statement_share", "blocks and corrections with a statement", ["tenant"]
)


def ago(seconds: float) -> str:
    s = int(max(0, seconds))
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def ts(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))


def quantile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def timeline(m: dict[str, Any] | None, d: Decision, w: int = 640, h: int = 170) -> dict | None:
    """Inline-SVG geometry of the evidence frames' scores for the decision's category, with
    the policy's review and block thresholds as lines."""
    if not m or not m.get("frames") or not d.reasons:
        return None
    cat = d.reasons[0].category
    pts = [(f["captured_at"], _score(f["scores"], cat), f["cited"]) for f in m["frames"]]
    t0, t1 = pts[0][0], max(pts[-1][0], pts[0][0] + 1)
    pad, top, bottom = 78, 10, h - 24

    def x(t: float) -> float:
        return round(pad + (t - t0) / (t1 - t0) * (w - pad - 10), 1)

    def y(v: float) -> float:
        return round(bottom - v * (bottom - top), 1)

    th = m.get("thresholds") or {"review": d.reasons[0].threshold}
    lines = [{"label": f"{k} {v:.2f}", "y": y(v), "kind": k} for k, v in sorted(th.items())]
    return {
        "w": w,
        "h": h,
        "category": cat,
        "points": " ".join(f"{x(t)},{y(v)}" for t, v, _ in pts),
        "dots": [{"x": x(t), "y": y(v), "cited": c, "v": v} for t, v, c in pts],
        "lines": lines,
        "x0": pad,
        "x1": w - 10,
        "bottom": bottom,
        "span": round(t1 - t0, 1),
    }


def _score(scores: dict[str, float], cat: str) -> float:
    """The category's score, or the best of its children (a rule on a parent covers them)."""
    if cat in scores:
        return scores[cat]
    kids = [v for k, v in scores.items() if k.startswith(cat + ".")]
    return max(kids, default=0.0)


def findings(m: dict[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"hash_matches": [], "text": []}
    for f in (m or {}).get("frames", []):
        for hm in f.get("hash_matches", []):
            out["hash_matches"].append({**hm, "frame_id": f["frame_id"]})
        for t in f.get("text", []):
            out["text"].append({**t, "frame_id": f["frame_id"]})
    return out


def _latest(reviews: list[ReviewOutcome]) -> dict[str, ReviewOutcome]:
    latest: dict[str, ReviewOutcome] = {}
    for rv in reviews:
        old = latest.get(rv.decision_id)
        if old is None or (rv.resolved_at, rv.review_id) >= (old.resolved_at, old.review_id):
            latest[rv.decision_id] = rv
    return latest


def stats(
    decisions: dict[str, Decision],
    reviews: list[ReviewOutcome],
    pending: list[Decision],
    appeals: list[dict[str, Any]],
    sla_s: float,
    now: float,
) -> dict[str, Any]:
    """Every figure of the numbers page, from one tenant set's records (pure)."""
    latest = _latest(reviews)
    prec: dict[str, dict[str, Any]] = defaultdict(lambda: {"upheld": 0, "overturned": 0})
    within = 0
    c2a: list[float] = []
    per_reviewer: dict[str, dict[str, int]] = defaultdict(lambda: {"upheld": 0, "overturned": 0})
    for rv in latest.values():
        prec[rv.category or "unknown"][rv.verdict] += 1
        per_reviewer[rv.reviewer or "?"][rv.verdict] += 1
        d = decisions.get(rv.decision_id)
        if d is not None:
            within += rv.resolved_at - d.decided_at <= sla_s
            c2a.append(rv.resolved_at - d.captured_at)
    rows = []
    for cat, r in sorted(prec.items()):
        n = r["upheld"] + r["overturned"]
        rows.append({"category": cat, **r, "reviewed": n, "precision": r["upheld"] / n})
    auto = [d.decided_at - d.captured_at for d in decisions.values() if d.corrects is None]
    # restrictions and their corrections owe a statement; clearing a review restricted nothing
    acted = [d for d in decisions.values()
             if d.action == "block" or (d.corrects and _was_block(decisions, d.corrects))]  # fmt: skip
    with_stm = sum(1 for d in acted if d.statement is not None)
    corrected_blocks = [d for d in acted if d.corrects]
    turn = [a["decided_at"] - a["created_at"] for a in appeals if a.get("decided_at")]
    decided = [a for a in appeals if a.get("decided_at")]
    n_rev = len(latest)
    return {
        "precision": rows,
        "backlog": len(pending),
        "oldest_s": max((now - d.decided_at for d in pending), default=0.0),
        "breached": sum(1 for d in pending if now - d.decided_at > sla_s),
        "sla_compliance": within / n_rev if n_rev else None,
        "reviewed": n_rev,
        "reversal_rate": sum(1 for r in latest.values() if r.outcome == "overturned") / n_rev
        if n_rev
        else None,
        "appeals": len(appeals),
        "appeals_pending": len(appeals) - len(decided),
        "appeals_overturned": sum(1 for a in decided if a.get("outcome") == "overturned"),
        "appeal_turnaround_p50_s": quantile(turn, 0.5),
        "auto_p50_s": quantile(auto, 0.5),
        "auto_p95_s": quantile(auto, 0.95),
        "human_p50_s": quantile(c2a, 0.5),
        "human_p95_s": quantile(c2a, 0.95),
        "statement_share": with_stm / len(acted) if acted else None,
        "actions": len(acted),
        "corrected_blocks": len(corrected_blocks),
        "reviewers": [{"reviewer": k, **v} for k, v in sorted(per_reviewer.items())],
    }


def _was_block(decisions: dict[str, Decision], did: str) -> bool:
    d = decisions.get(did)
    return d is not None and d.action == "block"


async def compute(c: Console, tenants: set[str] | None) -> dict[str, Any]:
    ix = c.index

    def mine(t: str) -> bool:
        return tenants is None or t in tenants

    return stats(
        {k: d for k, d in ix.decisions.items() if mine(d.tenant)},
        [r for r in ix.reviews if mine(r.tenant)],
        [d for d in ix.pending.values() if mine(d.tenant)],
        await c.appeals.all(tenants),
        c.settings.console.sla_live_s,
        time.time(),
    )


async def refresh_gauges(c: Console) -> None:
    """Set the gauges per tenant at scrape time (tenants are few and bounded)."""
    tenants = set(c.index.tenants)
    for t in sorted(tenants):
        s = await compute(c, {t})
        G_BACKLOG.labels(t).set(s["backlog"])
        G_OLDEST.labels(t).set(s["oldest_s"])
        for name, g in (("sla_compliance", G_SLA), ("reversal_rate", G_REVERSAL),
                        ("statement_share", G_STATEMENT),
                        ("appeal_turnaround_p50_s", G_APPEAL)):  # fmt: skip
            if s[name] is not None:
                g.labels(t).set(s[name])
        for row in s["precision"]:
            G_PRECISION.labels(t, row["category"]).set(row["precision"])
        for q, key in (("0.5", "human_p50_s"), ("0.95", "human_p95_s")):
            if s[key] is not None:
                G_C2A.labels(t, q).set(s[key])
