"""The published rules of receivers we cannot reach from here: Slack and PagerDuty.

Slack: Block Kit limits and mrkdwn control sequences, as docs.slack.dev states them (block
reference pages, formatting-message-text#escaping, chat.postMessage). PagerDuty: its own
OpenAPI file (tests/alerts/data, see its README) plus the limits its developer docs state.
Each checker returns the list of violations, empty when the receiver would accept the body.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema

# --------------------------------------------------------------------------------------- Slack

_LINK = re.compile(r"<([^<>]*)>")
_OK_LINK = re.compile(r"^https?://[^\s|<>]+\|[^|<>]+$")
_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


def _text_obj(where: str, t: Any, limit: int | None, errs: list[str], plain: bool = False) -> None:
    if not isinstance(t, dict) or t.get("type") not in ("plain_text", "mrkdwn"):
        errs.append(f"{where}: not a text object")
        return
    if plain and t["type"] != "plain_text":
        errs.append(f"{where}: must be plain_text")
    s = t.get("text")
    if not isinstance(s, str) or not s:
        errs.append(f"{where}: text must be a non-empty string")
        return
    if limit is not None and len(s) > limit:
        errs.append(f"{where}: {len(s)} characters > {limit}")
    if t["type"] == "mrkdwn":
        errs += [f"{where}: {e}" for e in mrkdwn_problems(s)]


def mrkdwn_problems(s: str) -> list[str]:
    """Control sequences that were not meant: mentions (<!channel>, <@U..>, <#C..>), links
    that are not plain http(s) links with a label, and a bare '&' that is not an entity."""
    errs = []
    for m in _LINK.finditer(s):
        inner = m.group(1)
        if inner.startswith(("!", "@", "#")) or not _OK_LINK.match(inner):
            errs.append(f"control sequence <{inner[:60]}>")
    if "<" in _LINK.sub("", s) or ">" in _LINK.sub("", s):
        errs.append("unescaped < or >")
    if _ENTITY.search(s):
        errs.append("unescaped &")
    return errs


def slack_problems(msg: dict[str, Any]) -> list[str]:
    """Why Slack would refuse (or mis-render) this incoming-webhook / chat.postMessage body."""
    errs: list[str] = []
    text = msg.get("text")
    if not isinstance(text, str) or not text.strip():
        errs.append("text: the fallback must always be sent (notifications, screen readers)")
    elif len(text) > 40000:
        errs.append(f"text: {len(text)} characters > 40000")
    else:
        errs += [f"text: {e}" for e in mrkdwn_problems(text)]
    blocks = msg.get("blocks", [])
    if len(blocks) > 50:
        errs.append(f"blocks: {len(blocks)} > 50")
    for i, b in enumerate(blocks):
        w = f"blocks[{i}] {b.get('type')}"
        if len(b.get("block_id", "")) > 255:
            errs.append(f"{w}: block_id > 255")
        kind = b.get("type")
        if kind == "header":
            _text_obj(w, b.get("text"), 150, errs, plain=True)
        elif kind == "section":
            if "text" not in b and "fields" not in b:
                errs.append(f"{w}: needs text or fields")
            if "text" in b:
                _text_obj(w + ".text", b["text"], 3000, errs)
            fields = b.get("fields", [])
            if len(fields) > 10:
                errs.append(f"{w}: {len(fields)} fields > 10")
            for j, f in enumerate(fields):
                _text_obj(f"{w}.fields[{j}]", f, 2000, errs)
        elif kind == "context":
            els = b.get("elements", [])
            if not 1 <= len(els) <= 10:
                errs.append(f"{w}: {len(els)} elements, 1..10 allowed")
            for j, e in enumerate(els):
                if e.get("type") != "image":
                    _text_obj(f"{w}.elements[{j}]", e, None, errs)
        elif kind == "actions":
            els = b.get("elements", [])
            if not 1 <= len(els) <= 25:
                errs.append(f"{w}: {len(els)} elements, 1..25 allowed")
            for j, e in enumerate(els):
                if e.get("type") != "button":
                    continue
                _text_obj(f"{w}.button[{j}]", e.get("text"), 75, errs, plain=True)
                for key, limit in (("url", 3000), ("value", 2000), ("action_id", 255)):
                    if len(e.get(key, "")) > limit:
                        errs.append(f"{w}.button[{j}].{key} > {limit}")
                if "url" in e and not re.match(r"^https?://[^\s]+$", e["url"]):
                    errs.append(f"{w}.button[{j}].url is not an http(s) URL")
        elif kind != "divider":
            errs.append(f"{w}: block type not used by framewatch")
    return errs


# ----------------------------------------------------------------------------------- PagerDuty

PD_OPENAPI = Path(__file__).parent / "data" / "pagerduty-events-v2.openapiv3.json"


def _pd_schema() -> dict[str, Any]:
    doc = json.loads(PD_OPENAPI.read_text())
    body = doc["paths"]["/enqueue"]["post"]["requestBody"]["content"]["application/json"]
    schema = copy.deepcopy(body["schema"])
    schema["components"] = doc["components"]  # the $refs point at #/components/...
    # the limits PagerDuty's developer docs state and the OpenAPI file does not
    published = {
        "properties": {
            "dedup_key": {"maxLength": 255},
            "payload": {"properties": {"summary": {"maxLength": 1024}}},
        },
        # "dedup_key: required unless the event_action is trigger"
        "if": {"properties": {"event_action": {"enum": ["acknowledge", "resolve"]}}},
        "then": {"required": ["dedup_key"]},
        "else": {"required": ["payload"]},
    }
    return {"allOf": [schema, published], "components": doc["components"]}


_FORMATS = jsonschema.FormatChecker()


@_FORMATS.checks("url")
def _is_url(value: object) -> bool:
    p = urlsplit(str(value))
    return p.scheme in ("http", "https") and bool(p.netloc)


@_FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    return dt.datetime.fromisoformat(str(value)).tzinfo is not None


PD_VALIDATOR = jsonschema.Draft202012Validator(_pd_schema(), format_checker=_FORMATS)


def pagerduty_problems(body: bytes) -> list[str]:
    """Why PagerDuty's Events API v2 would refuse this body (400), by its published rules."""
    if len(body) > 512 * 1024:
        return [f"payload of {len(body)} bytes > 512 KB"]
    doc = json.loads(body)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
        for e in PD_VALIDATOR.iter_errors(doc)
    ]
