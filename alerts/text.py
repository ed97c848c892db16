"""What every sink says about a record: its id, a one-line summary, evidence links, and a cap
that cuts long text with a visible note (receivers refuse or silently cut what is too long)."""

from __future__ import annotations

from urllib.parse import quote

from alerts.routing import Routable
from framewatch import records


def record_id(rec: Routable) -> str:
    """The idempotency id of a record: incident, enforcement, review or decision id."""
    if isinstance(rec, records.Alert):
        return rec.incident_id
    if isinstance(rec, records.Enforcement):
        return rec.enforcement_id
    if isinstance(rec, records.ReviewOutcome):
        return rec.review_id
    return rec.decision_id


def summary(rec: Routable) -> str:
    """One line a person can act on (raw text: each sink escapes it for its own format)."""
    if isinstance(rec, records.Alert):
        return rec.summary
    if isinstance(rec, records.Enforcement):
        return f"account {rec.account_id}: {rec.previous_action} -> {rec.action}"
    if isinstance(rec, records.ReviewOutcome):
        on = f"appeal {rec.appeal_id} against " if rec.appeal_id else ""
        return f"{on}decision {rec.decision_id} (stream {rec.stream_id}): {rec.outcome} on review"
    why = ", ".join(f"{r.category} {r.score:.2f}" for r in rec.reasons) or "no reasons"
    return f"stream {rec.stream_id}: {rec.previous_state} -> {rec.action} ({why})"


def evidence_urls(rec: Routable, template: str) -> list[str]:
    """Evidence links; the frame id is percent-encoded so that no id can bend the URL."""
    ids = getattr(rec, "evidence_frame_ids", [])
    return [template.format(frame_id=quote(f, safe="")) for f in ids] if template else []


def cap(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters; what is cut is replaced by a note saying so."""
    if len(text) <= limit:
        return text
    note = f" [...cut: {len(text)} characters in all]"
    return text[: max(0, limit - len(note))] + note
