"""What each kind of sink receives: PagerDuty Events API v2, Slack webhook, signed webhook."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from alerts.routing import Routable, Sink
from alerts.verify import sign
from framewatch import records

_PD_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "warning",
                "info": "info"}  # fmt: skip


def record_id(rec: Routable) -> str:
    """The idempotency id of a record: incident, enforcement or decision id."""
    if isinstance(rec, records.Alert):
        return rec.incident_id
    if isinstance(rec, records.Enforcement):
        return rec.enforcement_id
    return rec.decision_id


def _summary(rec: Routable) -> str:
    if isinstance(rec, records.Alert):
        return rec.summary
    if isinstance(rec, records.Enforcement):
        return f"account {rec.account_id}: {rec.previous_action} -> {rec.action}"
    why = ", ".join(f"{r.category} {r.score:.2f}" for r in rec.reasons) or "no reasons"
    return f"stream {rec.stream_id}: {rec.previous_state} -> {rec.action} ({why})"


def _evidence(rec: Routable, template: str) -> list[str]:
    ids = getattr(rec, "evidence_frame_ids", [])
    return [template.format(frame_id=f) for f in ids] if template else []


def pagerduty_body(
    sink: Sink, rec: Routable, evidence_url: str, *, tier: int = 0
) -> dict[str, Any]:
    """An Events API v2 event: trigger (dedup_key = incident id) or resolve."""
    body: dict[str, Any] = {
        "routing_key": sink.routing_key,
        "dedup_key": record_id(rec),
        "event_action": "resolve" if getattr(rec, "kind", "trigger") == "resolve" else "trigger",
    }
    if body["event_action"] == "resolve":
        return body
    test = getattr(rec, "test", False)
    sev = rec.severity if isinstance(rec, records.Alert) else "high"
    ts = getattr(rec, "raised_at", None) or getattr(rec, "issued_at", None) or rec.decided_at  # type: ignore[union-attr]
    category = getattr(rec, "category", None)
    body["payload"] = {
        "summary": (("[TEST] " if test else "") + _summary(rec))[:1024],
        "source": getattr(rec, "stream_id", None) or rec.account_id,
        "severity": _PD_SEVERITY[sev],
        "timestamp": dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(),
        "component": rec.account_id,
        "group": rec.tenant,
        "class": category or rec.TYPE,
        "custom_details": {
            "record_type": rec.TYPE,
            "tenant": rec.tenant,
            "account_id": rec.account_id,
            "stream_id": getattr(rec, "stream_id", None),
            "red_line": getattr(rec, "red_line", None),
            "escalation_tier": tier,
            "test": test,
        },
    }
    body["client"] = "framewatch"
    body["links"] = [{"href": u, "text": "evidence frame"} for u in _evidence(rec, evidence_url)]
    return body


def slack_body(
    rec: Routable, evidence_url: str, *, tier: int = 0, folded: int = 0
) -> dict[str, Any]:
    """A readable Slack message (mrkdwn); never the image itself, only a link to it."""
    head = "TEST ALERT (ignore) " if getattr(rec, "test", False) else ""
    if isinstance(rec, records.Alert) and rec.kind == "resolve":
        head += ":white_check_mark: resolved"
    elif isinstance(rec, records.Alert):
        head += f":rotating_light: {rec.severity.upper()}" + (" RED LINE" if rec.red_line else "")
    else:
        head += f":no_entry: {rec.TYPE}"
    lines = [
        f"*{head}* {getattr(rec, 'category', '') or rec.TYPE}",
        f"*stream:* {getattr(rec, 'stream_id', '-') or '-'}  *account:* {rec.account_id}"
        f"  *tenant:* {rec.tenant}",
        f"*why:* {_summary(rec)}",
        f"*id:* {record_id(rec)}",
    ]
    if tier:
        lines.append(f"*escalated:* tier {tier} (not acknowledged)")
    if folded:
        lines.append(f"*folded:* {folded} more alert(s) from this stream/account")
    for url in _evidence(rec, evidence_url):
        lines.append(f"<{url}|evidence frame>")
    if getattr(rec, "runbook_url", None):
        lines.append(f"<{rec.runbook_url}|runbook>")  # type: ignore[union-attr]
    text = "\n".join(lines)
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def request_for(
    sink: Sink, rec: Routable, evidence_url: str, *, tier: int = 0, folded: int = 0
) -> tuple[bytes, dict[str, str]]:
    """Body bytes and headers of one delivery to ``sink``."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "framewatch-alerts",
        **sink.headers,
    }
    if sink.type == "pagerduty":
        body = json.dumps(pagerduty_body(sink, rec, evidence_url, tier=tier)).encode()
    elif sink.type == "slack":
        body = json.dumps(slack_body(rec, evidence_url, tier=tier, folded=folded)).encode()
    else:
        body = records.encode(rec)
        assert sink.secret  # validated in routing
        headers.update(sign(sink.secret, body))
        headers["X-Framewatch-Record-Type"] = rec.TYPE
        headers["X-Framewatch-Delivery"] = f"{record_id(rec)}:{tier}"
        if tier:
            headers["X-Framewatch-Escalation-Tier"] = str(tier)
        if folded:
            headers["X-Framewatch-Folded"] = str(folded)
    return body, headers
