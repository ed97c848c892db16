"""The Slack message of a record: Block Kit blocks plus the plain ``text`` fallback.

Everything interpolated is escaped for mrkdwn and every block stays inside Block Kit's published
limits, so that no account id can ping a channel or disguise a link, and no long record gets the
page refused (Slack answers ``400 invalid_blocks``, which is not retried: the page would be lost).

Slack's published rules this module keeps (read at the source, docs.slack.dev):
- escaping, /messaging/formatting-message-text#escaping: ``&``, ``<`` and ``>`` are control
  characters in mrkdwn and must be sent as ``&amp;``, ``&lt;``, ``&gt;`` (only those three);
- blocks, /reference/block-kit/blocks: at most 50 blocks in a message;
- header, /reference/block-kit/blocks/header-block: ``plain_text`` of at most 150 characters;
- section, /reference/block-kit/blocks/section-block: text at most 3000 characters; ``fields`` at
  most 10 items of at most 2000 characters;
- context, /reference/block-kit/blocks/context-block: at most 10 elements;
- button, /reference/block-kit/block-elements/button-element: text (``plain_text``) at most 75
  characters, ``url`` at most 3000, ``value`` at most 2000, ``action_id`` at most 255;
- chat.postMessage, /reference/methods/chat.postMessage: ``text`` is the fallback shown in
  notifications and to screen readers when blocks are sent; Slack cuts text over 40,000
  characters (we send it always, and far shorter).
"""

from __future__ import annotations

import re
from typing import Any

from alerts.routing import Routable
from alerts.text import cap, evidence_urls, record_id, summary
from framewatch import records

MAX_BLOCKS = 50
HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_MAX = 2000
FIELDS_MAX = 10
CONTEXT_ELEMENTS_MAX = 10
BUTTON_TEXT_MAX = 75
BUTTON_URL_MAX = 3000
BUTTON_VALUE_MAX = 2000
ACTION_ID_MAX = 255
TEXT_MAX = 40000
# ours: a page is read on a phone; the full record is one `framewatch tail` away
VALUE_MAX = 200
EVIDENCE_LINKS_MAX = 10
FALLBACK_MAX = 3000
_URL = re.compile(r"^https?://[^\s<>|]+$")
_TOPIC = {
    "alert": "alerts",
    "decision": "decisions",
    "enforcement": "enforcement",
    "review": "reviews",
}


def escape(text: str) -> str:
    """mrkdwn-escape untrusted text: ``<!channel>`` and ``<https://x|y>`` render as text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _value(text: object, limit: int = VALUE_MAX) -> str:
    """An untrusted value for mrkdwn: escaped, then cut within ``limit`` with a visible note
    (never inside an ``&amp;``-style entity, which would show as a stray fragment)."""
    out = escape(str(text))
    if len(out) <= limit:
        return out
    note = f" [...cut: {len(str(text))} characters in all]"
    head = out[: max(0, limit - len(note))]
    amp = head.rfind("&")
    if amp >= 0 and ";" not in head[amp:]:
        head = head[:amp]
    return head + note


def _link(url: str, label: str) -> str:
    """A mrkdwn link; ``|``, ``<`` and ``>`` in the URL would end the link early: encode them."""
    safe = url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E").replace("&", "&amp;")
    return f"<{safe}|{escape(label)}>"


def _headline(rec: Routable) -> str:
    head = "TEST ALERT (ignore) " if getattr(rec, "test", False) else ""
    if isinstance(rec, records.Alert) and rec.kind == "resolve":
        head += ":white_check_mark: resolved"
    elif isinstance(rec, records.Alert):
        head += f":rotating_light: {rec.severity.upper()}" + (" RED LINE" if rec.red_line else "")
    elif isinstance(rec, records.Enforcement):
        head += f":no_entry: enforcement {rec.action}"
    elif isinstance(rec, records.ReviewOutcome):
        head += f":scales: {'appeal' if rec.appeal_id else 'verdict'} {rec.outcome}"
    else:
        head += f":no_entry: decision {rec.action}"
    what = getattr(rec, "category", None) or ""
    return cap(f"{head} {what}".strip(), HEADER_MAX)


def message(rec: Routable, evidence_url: str, *, tier: int = 0, folded: int = 0) -> dict[str, Any]:
    """A readable Slack message; never the image itself, only links to it."""
    stream = getattr(rec, "stream_id", None) or "-"
    fields = [
        f"*stream:*\n{_value(stream)}",
        f"*account:*\n{_value(rec.account_id)}",
        f"*tenant:*\n{_value(rec.tenant)}",
        f"*id:*\n{_value(record_id(rec))}",
    ]
    lines = [f"*why:* {_value(summary(rec), SECTION_TEXT_MAX - 200)}"]
    if tier:
        lines.append(f"*escalated:* tier {tier} (not acknowledged)")
    if folded:
        lines.append(f"*folded:* {folded} more alert(s) from this stream/account")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _headline(rec)}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
        {"type": "section", "text": {"type": "mrkdwn", "text": _section(lines)}},
    ]
    urls = evidence_urls(rec, evidence_url)
    if urls:
        shown = [_link(u, f"frame {i + 1}") for i, u in enumerate(urls[:EVIDENCE_LINKS_MAX])]
        more = len(urls) - len(shown)
        note = f" and {more} more (all {len(urls)} in the record)" if more else ""
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn",
                                         "text": _section(["*evidence:* " + " ".join(shown) + note])}}
        )  # fmt: skip
    runbook = getattr(rec, "runbook_url", None)
    if runbook and len(runbook) <= BUTTON_URL_MAX and _URL.match(runbook):  # else invalid_blocks
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Runbook"},
                        "url": runbook,
                        "action_id": "runbook",
                    }
                ],
            }
        )
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _value(
            f"framewatch {rec.TYPE} · `framewatch tail {_TOPIC[rec.TYPE]}` has the full record", 300
        )}]}
    )  # fmt: skip
    return {"text": _fallback(rec, tier), "blocks": blocks[:MAX_BLOCKS]}


def _section(lines: list[str]) -> str:
    """Lines joined within the section limit; lines that do not fit are counted, not cut."""
    out: list[str] = []
    used = 0
    for i, line in enumerate(lines):
        rest = len(lines) - i
        room = SECTION_TEXT_MAX - used - (60 if rest > 1 else 0)
        if len(line) + 1 > room:
            out.append(f"_[{rest} more line(s) cut to fit Slack's limit]_")
            break
        out.append(line)
        used += len(line) + 1
    return "\n".join(out)


def _fallback(rec: Routable, tier: int) -> str:
    """The notification text: escaped like the blocks, short, never empty."""
    esc = f" (escalated, tier {tier})" if tier else ""
    who = f"account {rec.account_id}, tenant {rec.tenant}"
    return _value(f"{_headline(rec)}{esc}: {summary(rec)} ({who})", FALLBACK_MAX)
