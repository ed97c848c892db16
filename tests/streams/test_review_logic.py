"""Review outcomes without a broker: the exact functions the worker's review agents call."""

from __future__ import annotations

from typing import Any

import pytest

from framewatch import records
from framewatch.records import Decision, Enforcement, ReviewOutcome
from framewatch.settings import load_settings
from streams import review, statement
from streams.processor import Processor, ReviewProcessor
from tests.streams.helpers import scores

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def proc() -> Processor:
    return Processor(load_settings(streams={"policy_dir": "/nonexistent"}))


def run(proc: Processor, frames: list[Any], state: dict[str, Any] | None = None) -> tuple:  # type: ignore[type-arg]
    decisions = []
    for sc in frames:
        res = proc.on_scores(state, sc)
        state = res.state
        decisions += [o.record for o in res.outputs if isinstance(o.record, Decision)]
    return state, decisions


def verdict(d: Decision, outcome: str, at: float = T0 + 60, **kw: Any) -> ReviewOutcome:
    return ReviewOutcome(
        review_id=review.review_id(d.decision_id, outcome),
        decision_id=d.decision_id,
        stream_id=d.stream_id,
        account_id=d.account_id,
        outcome=outcome,  # type: ignore[arg-type]
        action=d.action if d.action != "allow" else None,  # type: ignore[arg-type]
        category=d.reasons[0].category if d.reasons else None,
        resolved_at=at,
        **kw,
    )


def gore(seq: int, score: float = 0.95, stream: str = "s1") -> Any:
    return scores(seq, stream, cats={"violence.gore": score}, t0=T0)


def test_overturned_block_clears_stream_with_corrected_statement(proc: Processor) -> None:
    state, [block] = run(proc, [gore(i) for i in range(3)])
    assert state is not None and state["state"] == "blocked"
    rp = ReviewProcessor(proc)
    res = rp.on_review(state, verdict(block, "overturned", reviewer="ana", note="cooking show"))
    assert res.cleared and not res.duplicate and res.category == "violence.gore"
    assert res.state["state"] == "ok" and res.state["history"] == {}
    allow = next(o.record for o in res.outputs if o.topic == "decisions")
    assert allow.action == "allow" and allow.corrects == block.decision_id
    assert allow.previous_state == "blocked" and allow.first_frame_id == block.first_frame_id
    assert allow.reasons[0].source == "review"
    stm = allow.statement
    statement.validate(stm)
    assert stm.puid == allow.decision_id and block.decision_id in stm.decision_facts
    assert stm.end_date_visibility_restriction == "2023-11-14"
    assert stm.automated_decision == "AUTOMATED_DECISION_PARTIALLY"
    assert "cooking show" in stm.decision_facts
    assert "ana" not in stm.decision_facts  # no personal data: the database publishes it
    assert [o.topic for o in res.outputs] == ["decisions", "reviews_by_account", "audit_in"]

    # smoothing restarts: benign frames stay ok, and it takes k fresh frames to block again
    state, later = run(proc, [gore(3, 0.05), gore(4, 0.05), gore(5, 0.95)], res.state)
    assert later == [] and state["state"] == "ok"


def test_replayed_overturn_resends_the_same_allow_and_counts_once(proc: Processor) -> None:
    state, [block] = run(proc, [gore(i) for i in range(3)])
    rp = ReviewProcessor(proc)
    rv = verdict(block, "overturned")
    first = rp.on_review(state, rv)
    again = rp.on_review(first.state, rv)
    assert again.duplicate and not again.cleared
    a1 = next(o.record for o in first.outputs if o.topic == "decisions")
    a2 = next(o.record for o in again.outputs if o.topic == "decisions")
    assert a1 == a2  # same id, same body: consumers de-duplicate by decision_id
    assert again.state["state"] == "ok"


def test_upheld_changes_nothing_but_is_recorded(proc: Processor) -> None:
    state, [block] = run(proc, [gore(i) for i in range(3)])
    res = ReviewProcessor(proc).on_review(state, verdict(block, "upheld"))
    assert res.state["state"] == "blocked" and res.state["decision_id"] == block.decision_id
    assert [o.topic for o in res.outputs] == ["audit_in"]
    assert not res.cleared and res.category == "violence.gore"


def test_overturning_an_older_decision_leaves_the_stream_alone(proc: Processor) -> None:
    # review (hate 0.6 x3), then block (0.95 x3): overturning the review does not unblock
    frames = [scores(i, "s1", cats={"hate.speech": 0.6}, t0=T0) for i in range(3)]
    frames += [scores(i, "s1", cats={"hate.speech": 0.95}, t0=T0) for i in range(3, 6)]
    state, decisions = run(proc, frames)
    assert [d.action for d in decisions] == ["review", "block"]
    res = ReviewProcessor(proc).on_review(state, verdict(decisions[0], "overturned"))
    assert res.state["state"] == "blocked" and not res.cleared
    # a review decision never carried a strike: nothing to send to the ledger
    assert [o.topic for o in res.outputs] == ["audit_in"]


def ledger_for(proc: Processor, blocks: list[Decision]) -> tuple[dict[str, Any], list[Any]]:
    led: dict[str, Any] | None = None
    enf: list[Any] = []
    for d in blocks:
        led, outs = proc.on_decision(led, d)
        enf += [o.record for o in outs]
    assert led is not None
    return led, enf


def three_blocks(proc: Processor) -> list[Decision]:
    out = []
    for n in range(3):
        _, [d] = run(proc, [gore(i, stream=f"s{n}") for i in range(3)])
        out.append(d)
    return out


def test_ledger_removes_the_strike_once_and_steps_down(proc: Processor) -> None:
    blocks = three_blocks(proc)  # 3 x 1.5 = 4.5 strikes: warn, then restrict
    led, enf = ledger_for(proc, blocks)
    assert [e.action for e in enf] == ["warn", "restrict"]
    rp = ReviewProcessor(proc)
    rv = verdict(blocks[0], "overturned", at=T0 + 3600)
    led, outs = rp.on_ledger(led, rv)
    [rev] = [o.record for o in outs]
    assert isinstance(rev, Enforcement)
    assert (rev.previous_action, rev.action, rev.reverses) == (
        "restrict",
        "warn",
        enf[1].enforcement_id,
    )
    assert rev.statement is not None and rev.statement.end_date_account_restriction
    statement.validate(rev.statement)
    assert blocks[0].decision_id in rev.statement.decision_facts
    assert len(led["strikes"]) == 2
    # the same review again: nothing removed, no second reversal
    led2, outs2 = rp.on_ledger(led, rv)
    assert outs2 == [] and led2["strikes"] == led["strikes"]
    # the overturned decision arriving late (a replay) never counts again
    led3, outs3 = proc.on_decision(led2, blocks[0])
    assert outs3 == [] and len(led3["strikes"]) == 2


def test_review_before_its_decision_reaches_the_ledger(proc: Processor) -> None:
    [b0, *_] = three_blocks(proc)
    led, outs = ReviewProcessor(proc).on_ledger(None, verdict(b0, "overturned"))
    assert outs == [] and led["strikes"] == []
    led, outs = proc.on_decision(led, b0)
    assert outs == [] and led["strikes"] == []  # counted as seen, not as a strike


def rv(decision: str, outcome: str, at: float, cat: str = "violence.gore", action: str = "block"):  # type: ignore[no-untyped-def]
    return ReviewOutcome(
        review_id=review.review_id(decision, outcome),
        decision_id=decision,
        stream_id="s",
        account_id="a",
        outcome=outcome,  # type: ignore[arg-type]
        action=action,  # type: ignore[arg-type]
        category=cat,
        resolved_at=at,
    )


def test_precision_per_category_latest_verdict_per_decision() -> None:
    rows = review.precision(
        [
            rv("d1", "upheld", 1),
            rv("d2", "overturned", 2),
            rv("d2", "overturned", 5),  # re-sent: the same decision counts once
            rv("d3", "overturned", 3),
            rv("d3", "upheld", 4),  # a later verdict supersedes
            rv("d4", "upheld", 1, action="review"),
            rv("d5", "overturned", 1, cat="hate.speech"),
        ]
    )
    by = {r["category"]: r for r in rows}
    g = by["violence.gore"]
    assert (g["reviewed"], g["upheld"], g["overturned"], g["precision"]) == (4, 3, 1, 0.75)
    assert g["by_action"]["block"] == {"upheld": 2, "overturned": 1, "precision": 0.6667}
    assert g["by_action"]["review"]["precision"] == 1.0
    assert by["hate.speech"]["precision"] == 0.0


def test_review_ids_are_stable() -> None:
    assert review.review_id("d1", "upheld") == review.review_id("d1", "upheld")
    assert review.review_id("d1", "upheld") != review.review_id("d1", "overturned")
    assert review.allow_id("s", "d1") == records.stable_id("s", "allow", "review", "d1")


def test_overturned_red_line_block_resolves_its_incident_once(proc: Processor) -> None:
    red = [scores(i, "r1", cats={"child_safety.csam": 0.97}, t0=T0) for i in range(2)]
    state = None
    trigger = None
    for sc in red:
        res = proc.on_scores(state, sc)
        state = res.state
        trigger = trigger or next(
            (o.record for o in res.outputs if isinstance(o.record, records.Alert)), None
        )
    block = next(o for o in [trigger] if o is not None)
    assert block.kind == "trigger" and block.red_line
    rp = ReviewProcessor(proc)
    d = Decision.model_construct(
        decision_id=block.decision_id, stream_id="r1", account_id=block.account_id,
        action="block", reasons=[], tenant="default",
    )  # fmt: skip
    rv = verdict(d, "overturned", reviewer="ana")
    res = rp.on_review(state, rv)
    (resolve,) = [o.record for o in res.outputs if o.topic == "alerts"]
    assert resolve.kind == "resolve" and resolve.incident_id == block.incident_id
    assert resolve.red_line and resolve.severity == "critical" and "ana" in resolve.summary
    again = rp.on_review(res.state, rv)  # a re-sent review re-sends the same resolve (de-duped)
    assert [o.record for o in again.outputs if o.topic == "alerts"] == [resolve]
    # an overturned non-red block paged no one: nothing to resolve
    state, [gblock] = run(proc, [gore(i, stream="g9") for i in range(3)])
    plain = rp.on_review(state, verdict(gblock, "overturned"))
    assert [o for o in plain.outputs if o.topic == "alerts"] == []


def test_escalated_review_blocks_as_red_line_and_pages_once(proc: Processor) -> None:
    # gore 0.6 over three frames: a review decision; the reviewer sees a red line
    state, [rev] = run(proc, [gore(i, 0.6) for i in range(3)])
    assert rev.action == "review" and state["state"] == "review"
    rp = ReviewProcessor(proc)
    esc = verdict(rev, "escalated", reviewer="ana")
    res = rp.on_review(state, esc)
    assert res.state["state"] == "blocked" and not res.cleared
    by_topic = {o.topic: o.record for o in res.outputs}
    assert list(by_topic) == ["decisions", "alerts", "audit_in"]  # the block's strike: ledger
    block, page = by_topic["decisions"], by_topic["alerts"]
    assert block.action == "block" and block.red_line and block.previous_state == "review"
    assert block.reasons[0].source == "review" and block.reasons[0].category == "violence.gore"
    assert block.decision_id == review.escalation_id("default/s1", rev.decision_id)
    statement.validate(block.statement)
    # detected automatically, decided by a person: not a fully automated decision
    assert block.statement.automated_decision == "AUTOMATED_DECISION_PARTIALLY"
    assert page.kind == "trigger" and page.red_line and page.severity == "critical"
    assert "ana" in page.summary and page.tenant == "default"
    assert by_topic["audit_in"].reviewer == "ana"
    # a re-sent escalation sends the same records (same ids), never a second incident
    again = rp.on_review(res.state, esc)
    assert again.duplicate
    ids = {(o.topic, getattr(o.record, "decision_id", None)) for o in again.outputs}
    assert ("decisions", block.decision_id) in ids
    assert next(o.record for o in again.outputs if o.topic == "alerts").incident_id == (
        page.incident_id
    )
    # more frames do not decide again: the stream is blocked
    state2, more = run(proc, [gore(i, 0.99) for i in range(3, 6)], again.state)
    assert more == [] and state2["state"] == "blocked"


def test_escalating_an_ordinary_block_pages_only(proc: Processor) -> None:
    state, [block] = run(proc, [gore(i) for i in range(3)])
    assert not block.red_line
    rp = ReviewProcessor(proc)
    res = rp.on_review(state, verdict(block, "escalated"))
    assert [o.topic for o in res.outputs] == ["alerts", "audit_in"]  # no second block
    assert res.state["state"] == "blocked"
    # escalating again (another reviewer's id) does not page twice
    other = verdict(block, "escalated").model_copy(update={"review_id": "other"})
    res2 = rp.on_review(res.state, other)
    assert [o.topic for o in res2.outputs] == ["audit_in"]


def test_escalation_counts_as_upheld_for_precision() -> None:
    d = Decision(decision_id="d1", stream_id="s", account_id="a", action="review",
                 previous_state="ok", policy_version="p", first_frame_id="f",
                 captured_at=T0, decided_at=T0,
                 reasons=[records.Reason(category="violence.gore", score=0.6, threshold=0.5,
                                         frames_seen=3, frames_window=5, rule="r")])  # fmt: skip
    [row] = review.precision([verdict(d, "escalated")])
    assert row["upheld"] == 1 and row["precision"] == 1.0
    old = records.decode(
        records.encode(verdict(d, "upheld")).replace(b'"v":2', b'"v":1'), ReviewOutcome
    )
    assert old.outcome == "upheld"  # v1 reviews still read
