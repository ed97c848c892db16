"""`framewatch report transparency`: DSA-style counts computed from the audit trail.

The audit topic is the hash-chained copy of every decision, enforcement, review and evidence
pin, so the same period always gives the same report, and `framewatch audit verify` proves
the input was not altered.
"""

from __future__ import annotations

import asyncio
import csv
import html
import io
import json
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer

from framewatch import kafkaio, records
from framewatch.errors import FramewatchError, RecordDecodeError
from framewatch.records import AuditEntry
from framewatch.settings import Settings


async def read_audit(settings: Settings, timeout_s: float = 120.0) -> list[dict[str, Any]]:
    """Every audit entry's (record_type, record), oldest first per partition."""
    topic = settings.topics.name("audit")
    cons = AIOKafkaConsumer(**kafkaio.client_config(settings), group_id=None,
                            enable_auto_commit=False, auto_offset_reset="earliest")  # fmt: skip
    await cons.start()
    out: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    try:
        if topic not in await cons.topics():
            raise FramewatchError(
                f"audit topic {topic!r} does not exist: is FRAMEWATCH_TOPICS__PREFIX the worker's?"
            )
        cons.subscribe([topic])
        while not cons.assignment() and loop.time() < deadline:
            await asyncio.sleep(0.05)  # the assignment follows the topic's metadata
        tps = sorted(cons.assignment(), key=lambda tp: tp.partition)
        ends = await cons.end_offsets(tps)
        await cons.seek_to_beginning(*tps)
        left = {tp for tp in tps if ends[tp] > 0}
        while left and loop.time() < deadline:
            for tp, msgs in (await cons.getmany(timeout_ms=500)).items():
                for m in msgs:
                    try:
                        e = records.decode(m.value, expect=AuditEntry)
                    except RecordDecodeError:
                        continue
                    out.append({"type": e.record_type, "record": e.record})
                if await cons.position(tp) >= ends[tp]:
                    left.discard(tp)
        if left:
            raise FramewatchError(
                f"read only part of {topic!r} in {timeout_s:.0f} s: is the broker overloaded? "
                "run the report again"
            )
    finally:
        await cons.stop()
    return out


def transparency(
    entries: list[dict[str, Any]], start: float, end: float, tenant: str | None = None
) -> dict[str, Any]:
    """The report over [start, end) (pure): actions per category and restriction type,
    automated vs human, appeals and outcomes, median time to action."""
    decisions = {
        e["record"]["decision_id"]: e["record"] for e in entries if e["type"] == "decision"
    }

    def mine(r: dict[str, Any], at: str) -> bool:
        return (tenant is None or r.get("tenant") == tenant) and start <= r.get(at, 0) < end

    per_cat: dict[str, Counter[str]] = defaultdict(Counter)
    auto, human, to_action, human_time = 0, 0, [], []
    for d in decisions.values():
        if not mine(d, "decided_at") or d.get("corrects"):
            continue
        cat = d["reasons"][0]["category"] if d.get("reasons") else "unknown"
        per_cat[cat][d["action"]] += 1
        if d["action"] in ("block", "review"):
            auto += d["action"] == "block"
            to_action.append(d["decided_at"] - d["captured_at"])
    restrictions: Counter[str] = Counter()
    for e in entries:
        r = e["record"]
        if e["type"] == "enforcement" and mine(r, "issued_at"):
            restrictions[("reversal of " if r.get("reverses") else "") + r["action"]] += 1
    reviews: Counter[str] = Counter()
    appeals: Counter[str] = Counter()
    seen: set[str] = set()
    for e in entries:
        r = e["record"]
        if e["type"] != "review" or not mine(r, "resolved_at") or r["review_id"] in seen:
            continue
        seen.add(r["review_id"])
        human += 1
        reviews[r["outcome"]] += 1
        if (r.get("note") or "").startswith("[appeal "):
            appeals[r["outcome"]] += 1
        d = decisions.get(r["decision_id"])
        if d is not None:
            human_time.append(r["resolved_at"] - d["decided_at"])
    pins = sum(1 for e in entries if e["type"] == "evidence" and mine(e["record"], "pinned_at"))
    return {
        "period": {"from": _iso(start), "to": _iso(end)},
        "tenant": tenant,
        "actions_per_category": {c: dict(v) for c, v in sorted(per_cat.items())},
        "restrictions": dict(sorted(restrictions.items())),
        "automated_decisions": auto,
        "flagged_for_human_review": sum(v.get("review", 0) for v in per_cat.values()),
        "human_decisions": human,
        "human_outcomes": dict(reviews),
        "appeals_decided": sum(appeals.values()),
        "appeal_outcomes": dict(appeals),
        "median_time_to_action_s": _median(to_action),
        "median_time_to_human_decision_s": _median(human_time),
        "evidence_pins": pins,
    }


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 3) if xs else None


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def parse_time(s: str) -> float:
    """An ISO date or date-time (UTC unless it says otherwise)."""
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise FramewatchError(
            f"{s!r} is not a date: use e.g. 2026-11-01 or 2026-11-01T12:00Z"
        ) from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def render(rep: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rep, indent=2)
    rows = [("section", "key", "value")]
    for cat, acts in rep["actions_per_category"].items():
        rows.extend(("actions", f"{cat}/{a}", str(n)) for a, n in sorted(acts.items()))
    rows.extend(("restrictions", k, str(v)) for k, v in rep["restrictions"].items())
    for k in ("automated_decisions", "flagged_for_human_review", "human_decisions",
              "appeals_decided", "median_time_to_action_s", "median_time_to_human_decision_s",
              "evidence_pins"):  # fmt: skip
        rows.append(("totals", k, "" if rep[k] is None else str(rep[k])))
    rows.extend(("human_outcomes", k, str(v)) for k, v in rep["human_outcomes"].items())
    rows.extend(("appeal_outcomes", k, str(v)) for k, v in rep["appeal_outcomes"].items())
    if fmt == "csv":
        buf = io.StringIO()
        csv.writer(buf).writerows(rows)
        return buf.getvalue()
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows[1:]
    )
    p = rep["period"]
    title = f"Transparency report {p['from']} to {p['to']}" + (
        f" (tenant {rep['tenant']})" if rep["tenant"] else ""
    )
    return (
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<h1>{html.escape(title)}</h1><table border=1 cellpadding=4>"
        f"<tr><th>section</th><th>key</th><th>value</th></tr>{body}</table>\n"
    )
