"""Every Slack and PagerDuty body framewatch sends passes the receiver's own published rules:
each alert and decision kind, hostile ids from the push API, and a long-smoothing policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alerts import slack
from alerts.routing import Routable, Sink
from alerts.sinks import pagerduty_body, request_for
from framewatch import records, taxonomy
from streams.policy import load_dir
from streams.state import StreamState, step
from tests.alerts.receivers import mrkdwn_problems, pagerduty_problems, slack_problems
from tests.streams.helpers import scores

HOSTILE = "<!channel> <https://evil.example|Open review console> & <@U123> <#C1> *bold* `x`"
EVIDENCE = "https://review.example.com/evidence/frames/{frame_id}.jpg"
PD = Sink(name="pd", type="pagerduty", url="https://events.pagerduty.com/v2/enqueue",
          routing_key="R0123456789abcdef0123456789abcde")  # fmt: skip
SLACK = Sink(name="slack", type="slack", url="https://hooks.slack.com/services/T/B/x")
RUNBOOK = "https://runbooks.example/framewatch/red-line"


def long_smoothing_decision(tmp_path: Path) -> records.Decision:
    """The real state machine under a legal-team policy: 40 of 64 frames -> 40 evidence links."""
    (tmp_path / "default.yaml").write_text(
        "scope: {}\ndefaults: {review: 0.6, block: 0.9, smoothing: {k: 40, n: 64}}\n"
        "rules:\n  violence.gore: {review: 0.5, block: 0.85, smoothing: {k: 40, n: 64}}\n"
    )
    policy = load_dir(tmp_path, taxonomy.load())
    st, out = StreamState(), None
    for i in range(64):
        sc = scores(i, cats={"violence.gore": 0.95}).model_copy(
            update={"frame_id": records.new_id()}
        )
        o = step(st, sc, policy, decided_at=1000.0)
        st = o.state
        if o.decision:
            out = o.decision
            break
    assert out is not None and len(out.evidence_frame_ids) == 40
    return out


def red_line_from_the_state_machine() -> records.Alert:
    """The page the streams worker raises, for a stream and account id sent by a hostile client."""
    policy = load_dir(None, taxonomy.load())
    sc = scores(0, stream=HOSTILE, account=HOSTILE, cats={"child_safety.csam": 0.97})
    out = step(StreamState(), sc, policy, decided_at=1000.0, runbook_url=RUNBOOK)
    assert out.alert is not None
    return out.alert


def every_kind(tmp_path: Path) -> list[tuple[str, Routable, dict[str, int]]]:
    now = 1_700_000_000.0
    alert = dict(
        incident_id=records.new_id(), severity="critical", category="child_safety.csam",
        red_line=True, stream_id="stream-1", account_id="acct-1", tenant="t1",
        summary="red line child_safety.csam on stream stream-1 (score 0.97 >= 0.50)",
        evidence_frame_ids=["f1", "f2"], runbook_url=RUNBOOK, captured_at=now, raised_at=now,
    )  # fmt: skip
    red = records.Alert(**alert)
    hostile = records.Alert(
        **{**alert, "stream_id": HOSTILE, "account_id": HOSTILE, "tenant": HOSTILE,
           "summary": HOSTILE * 3, "evidence_frame_ids": [HOSTILE, "f|x>y"],
           "runbook_url": "javascript:alert(1) <!channel>"}
    )  # fmt: skip
    huge = records.Alert(
        **{**alert, "account_id": "a" * 5000, "stream_id": "<" * 5000, "summary": "&" * 50000,
           "incident_id": "i" * 400, "evidence_frame_ids": [f"f{i}" for i in range(500)]}
    )  # fmt: skip
    review = records.Alert(**{**alert, "severity": "medium", "red_line": False,
                              "category": "violence.gore", "runbook_url": None})  # fmt: skip
    resolve = records.Alert(**{**alert, "kind": "resolve", "summary": "stream cleared"})
    test = records.Alert(**{**alert, "test": True})
    base = long_smoothing_decision(tmp_path)
    decisions = {
        a: base.model_copy(update={"action": a, "account_id": HOSTILE})
        for a in ("block", "review", "allow")
    }
    enforcement = records.Enforcement(
        enforcement_id=records.new_id(), account_id=HOSTILE, tenant="t1", action="suspend_stream",
        previous_action="restrict", ladder_step=3, strikes={"violence.gore": 9.0},
        strike_total=9.0, decision_ids=[base.decision_id], policy_version="p-1", issued_at=now,
    )  # fmt: skip
    return [
        ("red line", red, {}),
        ("red line from the worker", red_line_from_the_state_machine(), {}),
        ("review alert", review, {}),
        ("hostile ids", hostile, {}),
        ("huge fields", huge, {}),
        ("resolve", resolve, {}),
        ("test alert", test, {}),
        ("escalation tier 2, folded", red, {"tier": 2, "folded": 7}),
        ("hostile escalation", hostile, {"tier": 1, "folded": 3}),
        *[(f"decision {a}", d, {}) for a, d in decisions.items()],
        ("enforcement", enforcement, {}),
        (
            "enforcement reversal",
            enforcement.model_copy(
                update={
                    "enforcement_id": records.new_id(),
                    "action": "restrict",
                    "previous_action": "suspend_stream",
                    "reverses": enforcement.enforcement_id,
                }
            ),
            {},
        ),
        (
            "decision correction",
            base.model_copy(
                update={
                    "decision_id": records.new_id(),
                    "action": "allow",
                    "previous_state": "blocked",
                    "corrects": base.decision_id,
                }
            ),
            {},
        ),
    ]


def test_every_slack_body_is_within_block_kit_rules(tmp_path: Path) -> None:
    for name, rec, kw in every_kind(tmp_path):
        body, _ = request_for(SLACK, rec, EVIDENCE, **kw)
        msg = json.loads(body)
        assert slack_problems(msg) == [], name
        assert msg["text"].strip(), name


def test_hostile_account_id_renders_as_text_not_a_ping_or_link(tmp_path: Path) -> None:
    hostile = next(r for n, r, _ in every_kind(tmp_path) if n == "hostile ids")
    msg = slack.message(hostile, EVIDENCE)
    everything = json.dumps(msg)
    assert "<!channel>" not in everything and "<https://evil.example" not in everything
    assert "&lt;!channel&gt;" in everything  # still visible to the reader, as text
    # the only links are ours: evidence frames with the hostile frame id percent-encoded
    for block in msg["blocks"]:
        for t in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
            if t and t.get("type") == "mrkdwn":
                assert mrkdwn_problems(t["text"]) == []
    assert "evidence/frames/%3C%21channel%3E" in everything


def test_long_smoothing_decision_fits_and_says_what_was_cut(tmp_path: Path) -> None:
    decision = long_smoothing_decision(tmp_path)
    msg = slack.message(decision, EVIDENCE)
    texts = [b["text"]["text"] for b in msg["blocks"] if b["type"] == "section" and "text" in b]
    assert max(len(t) for t in texts) <= 3000
    assert any("and 30 more (all 40 in the record)" in t for t in texts)


def test_huge_values_are_cut_with_a_visible_note(tmp_path: Path) -> None:
    huge = next(r for n, r, _ in every_kind(tmp_path) if n == "huge fields")
    msg = slack.message(huge, EVIDENCE)
    assert "[...cut: 5000 characters in all]" in json.dumps(msg)


@pytest.mark.parametrize("action", ["trigger", "acknowledge", "resolve"])
def test_every_pagerduty_body_matches_the_published_schema(tmp_path: Path, action: str) -> None:
    for name, rec, kw in every_kind(tmp_path):
        if action == "trigger":
            body, _ = request_for(PD, rec, EVIDENCE, tier=kw.get("tier", 0))
        else:
            body = json.dumps(pagerduty_body(PD, rec, EVIDENCE, action=action)).encode()
        doc = json.loads(body)
        assert pagerduty_problems(body) == [], name
        if getattr(rec, "kind", "trigger") == "resolve" or action != "trigger":
            assert doc["event_action"] in ("resolve", "acknowledge") and "payload" not in doc
        else:
            assert len(doc["payload"]["summary"]) <= 1024 and len(doc["dedup_key"]) <= 255


def test_the_schema_checker_refuses_what_pagerduty_refuses() -> None:
    """The checker itself: it must catch what PagerDuty documents as a 400."""
    ok = {"routing_key": "k", "event_action": "trigger", "dedup_key": "d",
          "payload": {"summary": "s", "source": "x", "severity": "critical"}}  # fmt: skip
    assert pagerduty_problems(json.dumps(ok).encode()) == []
    bad = [
        {**ok, "event_action": "escalate"},
        {**ok, "dedup_key": "d" * 256},
        {**ok, "payload": {**ok["payload"], "summary": "s" * 1025}},
        {**ok, "payload": {**ok["payload"], "severity": "high"}},
        {"routing_key": "k", "event_action": "resolve"},
        {**ok, "links": [{"href": "not a url"}]},
    ]
    for b in bad:
        assert pagerduty_problems(json.dumps(b).encode()), b


def test_the_slack_checker_refuses_what_slack_refuses() -> None:
    sec = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    assert slack_problems({"text": "t", "blocks": [sec]})
    assert slack_problems({"blocks": []})  # no fallback
    assert slack_problems({"text": "<!channel> hi"})
    assert slack_problems({"text": "t", "blocks": [{"type": "divider"}] * 51})
    head = {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}
    assert slack_problems({"text": "t", "blocks": [head]})
