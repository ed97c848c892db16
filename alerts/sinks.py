"""What each kind of sink receives: PagerDuty Events API v2, Slack webhook, signed webhook."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from alerts import slack
from alerts.routing import Routable, Sink
from alerts.text import cap, evidence_urls, record_id, summary
from alerts.verify import sign
from framewatch import records

# PagerDuty's published limits (see pagerduty_body); the links cap is ours, to stay far from 512 KB
PD_SUMMARY_MAX = 1024
PD_DEDUP_KEY_MAX = 255
PD_FIELD_MAX = 255
PD_LINKS_MAX = 20

_PD_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "warning",
                "info": "info"}  # fmt: skip


def pagerduty_body(
    sink: Sink, rec: Routable, evidence_url: str, *, tier: int = 0, action: str | None = None
) -> dict[str, Any]:
    """An Events API v2 event: trigger (dedup_key = incident id), acknowledge or resolve.

    Published limits (developer.pagerduty.com, docs/events-API-v2/02-Trigger-Events.md):
    ``payload.summary`` at most 1024 characters, ``dedup_key`` at most 255; payloads 512 KB.
    """
    if action is None:
        action = "resolve" if getattr(rec, "kind", "trigger") == "resolve" else "trigger"
    body: dict[str, Any] = {
        "routing_key": sink.routing_key,
        "dedup_key": _pd_dedup_key(record_id(rec)),
        "event_action": action,
    }
    if action != "trigger":
        return body
    test = getattr(rec, "test", False)
    sev = rec.severity if isinstance(rec, records.Alert) else "high"
    ts = (
        getattr(rec, "raised_at", None)
        or getattr(rec, "issued_at", None)
        or getattr(rec, "resolved_at", None)
        or rec.decided_at  # type: ignore[union-attr]
    )
    category = getattr(rec, "category", None)
    stream = getattr(rec, "stream_id", None)
    evidence = evidence_urls(rec, evidence_url)
    body["payload"] = {
        "summary": cap(("[TEST] " if test else "") + summary(rec), PD_SUMMARY_MAX),
        "source": cap(stream or rec.account_id, PD_FIELD_MAX),
        "severity": _PD_SEVERITY[sev],
        "timestamp": dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(),
        "component": cap(rec.account_id, PD_FIELD_MAX),
        "group": cap(rec.tenant, PD_FIELD_MAX),
        "class": category or rec.TYPE,
        "custom_details": {
            "record_type": rec.TYPE,
            "record_id": record_id(rec),
            "tenant": rec.tenant,
            "account_id": rec.account_id,
            "stream_id": stream,
            "red_line": getattr(rec, "red_line", None),
            "escalation_tier": tier,
            "evidence_frames": len(getattr(rec, "evidence_frame_ids", [])),
            "test": test,
        },
    }
    body["client"] = "framewatch"
    links = [{"href": u, "text": f"evidence frame {i + 1}"} for i, u in enumerate(evidence)]
    body["links"] = links[:PD_LINKS_MAX]
    return body


def _pd_dedup_key(rid: str) -> str:
    """Our ids are 32 hex characters; an id from outside longer than PagerDuty's 255 becomes a
    digest, so acknowledge and resolve still find the alert their trigger opened."""
    return rid if len(rid) <= PD_DEDUP_KEY_MAX else "sha256:" + records.stable_id(rid)


def request_for(
    sink: Sink,
    rec: Routable,
    evidence_url: str,
    *,
    tier: int = 0,
    folded: int = 0,
    action: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """Body bytes and headers of one delivery to ``sink`` (``action``: PagerDuty's
    event_action when it is not the record's own, e.g. ``acknowledge``)."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "framewatch-alerts",
        **sink.headers,
    }
    if sink.type == "pagerduty":
        body = json.dumps(
            pagerduty_body(sink, rec, evidence_url, tier=tier, action=action)
        ).encode()
    elif sink.type == "slack":
        body = json.dumps(slack.message(rec, evidence_url, tier=tier, folded=folded)).encode()
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
