"""Review outcomes and appeals: what a reviewer's verdict does. Pure, no Faust, no I/O.

``overturned`` clears the stream (back to ok, an ``allow`` decision that ``corrects`` the
original) and removes the decision's strike from the account ledger; ``upheld`` changes nothing
but is recorded (audit trail, precision); ``escalated`` (a reviewer saw a red line) blocks the
stream as a red line and pages on-call: a ``block`` decision (whose strike the ledger counts as
for any block) and a red-line trigger alert, or only the page when the stream is already blocked
without one. Every id is derived from the review, so a replayed or
re-sent review yields the same records and never removes a strike twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from framewatch import records, scope
from framewatch.records import AccountForget, Alert, Decision, Enforcement, Reason, ReviewOutcome
from streams import ledger as ledger_mod
from streams.policy import Policy
from streams.state import StreamState, clear, incident_id


def review_id(decision_id: str, outcome: str, appeal_id: str | None = None) -> str:
    """The same verdict on the same decision is the same review (a re-run is idempotent); a
    verdict deciding an appeal is its own review, though an earlier one said the same."""
    return records.stable_id("review", decision_id, outcome, *([appeal_id] if appeal_id else []))


def escalation_id(stream_key: str, decision_id: str) -> str:
    """Id of the red-line ``block`` an escalation of ``decision_id`` makes (``scope.stream``)."""
    return records.stable_id(stream_key, "block", "review", decision_id)


def allow_id(stream_id: str, decision_id: str) -> str:
    """Id of the ``allow`` decision that clears a stream after its decision was overturned."""
    return records.stable_id(stream_id, "allow", "review", decision_id)


@dataclass
class StreamReview:
    """What a review does to its stream."""

    state: StreamState
    decision: Decision | None = None  # the allow that clears the stream (again, on a re-send)
    original_action: str | None = None  # action of the reviewed decision, where known
    category: str | None = None  # its top category, where known
    forward: bool = False  # send to the account ledger (remove the strike)
    duplicate: bool = False  # this review id was applied to the stream before
    cleared: bool = False  # the stream went back to ok just now
    alert: Alert | None = None  # resolves the red-line incident of an overturned block


def on_stream(
    st: StreamState, rv: ReviewOutcome, policy_version: str, keep: int = 200
) -> StreamReview:
    """Apply a verdict to the stream's state.

    The stream is cleared only when the reviewed decision is the one that put it in its current
    state; a verdict on an older decision (the stream moved on) touches only the ledger. A
    review of a block, or of a decision whose action is unknown, goes on to the ledger.
    """
    duplicate = rv.review_id in st.reviews
    if not duplicate:
        st.reviews.append(rv.review_id)
        del st.reviews[:-keep]
    current = st.decision_id == rv.decision_id
    info = dict(st.decided or {}) if current else {}
    action = rv.action or info.get("action")
    category = rv.category or info.get("category")
    out = StreamReview(st, original_action=action, category=category, duplicate=duplicate)
    if rv.outcome == "escalated":
        return _escalate(out, rv, info, policy_version)
    if rv.outcome == "upheld" or action == "allow":
        return out  # recorded only; an allow is not a verdict anyone can overturn
    out.forward = action in ("block", None)
    aid = allow_id(rv.stream_id, rv.decision_id)
    if current:
        new = clear(st)
        new.decision_id = aid
        new.decided = {
            **info,
            "action": "allow",
            "category": category,
            "corrects": rv.decision_id,
            "corrected_action": action,
            "previous_state": st.state,
        }
        out.state, out.cleared = new, True
        out.decision = _allow(new.decided, rv, policy_version)
        out.alert = _resolve(new.decided, rv)
    elif st.decision_id == aid and st.decided:
        # the stream is still where this review left it: send the same allow again, in case
        # the first was lost in a crash between the state write and the send (same id)
        out.decision = _allow(st.decided, rv, policy_version)
        out.alert = _resolve(st.decided, rv)
        out.original_action = st.decided.get("corrected_action") or action
    return out


def _escalate(
    out: StreamReview, rv: ReviewOutcome, info: dict[str, Any], policy_version: str
) -> StreamReview:
    """Block the stream as a red line and page, once.

    A stream not blocked is blocked by a new decision (``escalation_id``) with a page; a stream
    blocked without a page (an ordinary block) gets the page only; a red-line block already
    paged gets nothing. A re-sent escalation while the stream is still where it left it sends
    the same records again (same ids: the ledger and the router count them once), in case the
    first were lost in a crash between the state write and the send.
    """
    st = out.state
    skey = scope.stream(rv)
    bid = escalation_id(skey, rv.decision_id)
    category = out.category or "known_bad"
    if st.decision_id == bid and st.decided:
        if out.duplicate:
            out.decision = _block(st.decided, rv, policy_version)
            out.alert = _page(st.decided, rv, category)
        return out
    if st.state == "blocked":
        if (st.decided or {}).get("red_line"):
            return out  # paged when it was blocked
        st.decided = {**(st.decided or {}), "red_line": True, "escalated_by": rv.review_id}
        first = st.decided.get("first_frame_id") or rv.decision_id
        out.alert = _page({**st.decided, "first_frame_id": first}, rv, category)
        return out
    first = info.get("first_frame_id") or rv.decision_id
    st.decided = {
        **info,
        "action": "block",
        "category": category,
        "red_line": True,
        "first_frame_id": first,
        "captured_at": info.get("captured_at") or rv.resolved_at,
        "escalates": rv.decision_id,
        "previous_state": st.state,
    }
    st.state, st.decision_id = "blocked", bid
    out.decision = _block(st.decided, rv, policy_version)
    out.alert = _page(st.decided, rv, category)
    return out


def _block(info: dict[str, Any], rv: ReviewOutcome, policy_version: str) -> Decision:
    first = info.get("first_frame_id") or rv.decision_id
    score = info.get("score")
    return Decision(
        decision_id=escalation_id(scope.stream(rv), rv.decision_id),
        stream_id=rv.stream_id,
        account_id=rv.account_id,
        tenant=rv.tenant,
        channel=info.get("channel"),
        action="block",
        previous_state=info.get("previous_state", "ok"),
        reasons=[
            Reason(
                category=info.get("category") or "known_bad",
                score=score if score is not None else 1.0,
                threshold=info.get("threshold") if info.get("threshold") is not None else 0.0,
                frames_seen=0,
                frames_window=0,
                rule=f"review:{rv.review_id}",
                source="review",
            )
        ],
        red_line=True,
        policy_version=policy_version,
        evidence_frame_ids=[first],
        first_frame_id=first,
        captured_at=info.get("captured_at") or rv.resolved_at,
        decided_at=rv.resolved_at,
    )


def _page(info: dict[str, Any], rv: ReviewOutcome, category: str) -> Alert:
    """The red-line trigger of an escalation: the incident of a red-line block of the stream
    from that first frame (so a later overturn of the block resolves the same incident)."""
    by = f" by reviewer {rv.reviewer}" if rv.reviewer else ""
    summary = (
        f"red line {category} on stream {rv.stream_id}: escalated on human review{by} "
        f"({rv.review_id}); stream blocked"
    )
    return _incident(info, rv, info.get("first_frame_id") or rv.decision_id, category, summary)


def _incident(
    info: dict[str, Any],
    rv: ReviewOutcome,
    first: str,
    category: str,
    summary: str,
    kind: Literal["trigger", "resolve"] = "trigger",
) -> Alert:
    """A red-line incident of the reviewed stream, keyed by the block's first frame."""
    return Alert(
        incident_id=incident_id(scope.stream(rv), first),
        kind=kind,
        severity="critical",
        category=category,
        red_line=True,
        stream_id=rv.stream_id,
        account_id=rv.account_id,
        tenant=rv.tenant,
        decision_id=rv.decision_id,
        evidence_frame_ids=[first],
        summary=summary,
        captured_at=info.get("captured_at") or rv.resolved_at,
        raised_at=rv.resolved_at,
    )


def _allow(info: dict[str, Any], rv: ReviewOutcome, policy_version: str) -> Decision:
    cat = info.get("category")
    reasons = []
    if cat and info.get("score") is not None and info.get("threshold") is not None:
        reasons.append(
            Reason(
                category=cat,
                score=info["score"],
                threshold=info["threshold"],
                frames_seen=0,
                frames_window=0,
                rule=f"review:{rv.review_id}",
                source="review",
            )
        )
    first = info.get("first_frame_id") or rv.decision_id
    return Decision(
        decision_id=allow_id(rv.stream_id, rv.decision_id),
        stream_id=rv.stream_id,
        account_id=rv.account_id,
        tenant=rv.tenant,
        channel=info.get("channel"),
        action="allow",
        previous_state=info.get("previous_state", "ok"),
        reasons=reasons,
        red_line=False,
        policy_version=policy_version,
        evidence_frame_ids=[first],
        first_frame_id=first,
        captured_at=info.get("captured_at") or rv.resolved_at,
        decided_at=rv.resolved_at,
        corrects=rv.decision_id,
    )


def _resolve(info: dict[str, Any], rv: ReviewOutcome) -> Alert | None:
    """The resolve of the incident an overturned red-line block opened (same incident id, so
    PagerDuty closes it and Slack gets a follow-up); None when the block paged no one."""
    first = info.get("first_frame_id")
    if info.get("corrected_action") != "block" or not info.get("red_line") or not first:
        return None
    by = f" by {rv.reviewer}" if rv.reviewer else ""
    summary = (
        f"resolved: the red-line block of stream {rv.stream_id} was overturned on review"
        f"{by} ({rv.review_id}); the stream is cleared"
    )
    category = info.get("category") or "known_bad"
    return _incident(info, rv, first, category, summary, kind="resolve")


def on_ledger(
    led: ledger_mod.Ledger, rv: ReviewOutcome, policy: Policy
) -> tuple[Enforcement | None, str | None]:
    """Remove an overturned decision's strike; the reversal (if the step fell) and its category.

    Time is the review's resolution time, so a replay gives the same enforcement id and body.
    """
    cat = next((s["category"] for s in led.strikes if s["decision_id"] == rv.decision_id), None)
    enf = ledger_mod.remove(led, rv.decision_id, policy, rv.resolved_at, rv.resolved_at)
    return enf, cat or rv.category


def redacted(f: AccountForget) -> AccountForget:
    """The erasure request as the audit chain keeps it: the account id as ``sha256:`` of
    tenant/account, so the chain says an erasure happened without naming the account."""
    digest = hashlib.sha256(f"{f.tenant}/{f.account_id}".encode()).hexdigest()
    return f.model_copy(update={"account_id": f"sha256:{digest}"})


def precision(reviews: Iterable[ReviewOutcome]) -> list[dict[str, Any]]:
    """Per category: reviewed, upheld, overturned, precision = upheld / (upheld + overturned).

    A decision counts once, with its latest verdict (a later review supersedes an earlier one;
    a re-sent review is the same review). Split by the reviewed action too: block precision
    tunes block thresholds, review precision the review thresholds.
    """
    latest: dict[str, ReviewOutcome] = {}
    for rv in reviews:
        old = latest.get(rv.decision_id)
        if old is None or (rv.resolved_at, rv.review_id) >= (old.resolved_at, old.review_id):
            latest[rv.decision_id] = rv
    rows: dict[str, dict[str, Any]] = {}
    for rv in latest.values():
        cat = rv.category or "unknown"
        row = rows.setdefault(cat, {"category": cat, "upheld": 0, "overturned": 0, "by_action": {}})
        row[rv.verdict] += 1
        sub = row["by_action"].setdefault(rv.action or "unknown", {"upheld": 0, "overturned": 0})
        sub[rv.verdict] += 1
    for row in rows.values():
        row["reviewed"] = row["upheld"] + row["overturned"]
        row["precision"] = _ratio(row["upheld"], row["reviewed"])
        for sub in row["by_action"].values():
            sub["precision"] = _ratio(sub["upheld"], sub["upheld"] + sub["overturned"])
    return sorted(rows.values(), key=lambda r: r["category"])


def _ratio(a: int, n: int) -> float | None:
    return round(a / n, 4) if n else None
