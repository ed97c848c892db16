"""The transparency report and the programme's numbers, from records (pure)."""

from __future__ import annotations

import csv
import io

from console.numbers import stats
from console.report import parse_time, render, transparency
from framewatch.records import Decision, Reason, ReviewOutcome


def dec(did: str, action: str, cat: str, at: float, corrects: str | None = None,
        tenant: str = "ta") -> Decision:  # fmt: skip
    return Decision(decision_id=did, stream_id="s", account_id="a", tenant=tenant,
                    action=action, previous_state="ok",  # type: ignore[arg-type]
                    reasons=[Reason(category=cat, score=0.9, threshold=0.5, frames_seen=3,
                                    frames_window=5, rule="r")],
                    policy_version="pv", first_frame_id="f", captured_at=at - 2, decided_at=at,
                    corrects=corrects)  # fmt: skip


def rv(did: str, outcome: str, at: float, note: str | None = None, who: str = "alice",
       cat: str = "violence.gore") -> ReviewOutcome:  # fmt: skip
    return ReviewOutcome(review_id=f"{did}-{outcome}", decision_id=did, stream_id="s",
                         account_id="a", tenant="ta", outcome=outcome,  # type: ignore[arg-type]
                         category=cat, reviewer=who, note=note, resolved_at=at)  # fmt: skip


def entry(r: object) -> dict:
    return {"type": r.TYPE, "record": r.model_dump(mode="json")}  # type: ignore[attr-defined]


def test_transparency_counts_from_the_audit_trail() -> None:
    t0 = parse_time("2026-11-01")
    entries = [entry(r) for r in (
        dec("d1", "block", "violence.gore", t0 + 10),
        dec("d2", "review", "violence.gore", t0 + 20),
        dec("d3", "block", "hate.speech", t0 + 30),
        dec("d4", "block", "hate.speech", t0 + 86400 * 40),  # outside the period
        dec("d5", "block", "hate.speech", t0 + 40, tenant="tb"),
        rv("d2", "upheld", t0 + 80),
        rv("d1", "overturned", t0 + 100, note="[appeal x] [other] film"),
        rv("d1", "overturned", t0 + 100, note="[appeal x] [other] film"),  # a re-send
        dec("a1", "allow", "violence.gore", t0 + 101, corrects="d1"),
    )]  # fmt: skip
    rep = transparency(entries, t0, parse_time("2026-12-01"), tenant="ta")
    assert rep["actions_per_category"] == {
        "hate.speech": {"block": 1},
        "violence.gore": {"block": 1, "review": 1},
    }
    assert rep["automated_decisions"] == 2 and rep["flagged_for_human_review"] == 1
    assert rep["human_decisions"] == 2 and rep["human_outcomes"] == {"upheld": 1, "overturned": 1}
    assert rep["appeals_decided"] == 1 and rep["appeal_outcomes"] == {"overturned": 1}
    assert rep["median_time_to_action_s"] == 2.0
    assert rep["median_time_to_human_decision_s"] == 75.0
    rows = list(csv.reader(io.StringIO(render(rep, "csv"))))
    assert ["actions", "hate.speech/block", "1"] in rows
    assert "<table" in render(rep, "html")
    assert transparency(entries, t0, parse_time("2026-12-01"))["actions_per_category"][
        "hate.speech"] == {"block": 2}  # fmt: skip


def test_numbers_precision_sla_reversal_and_statements() -> None:
    ds = {d.decision_id: d for d in (
        dec("d1", "review", "violence.gore", 1000), dec("d2", "review", "violence.gore", 1000),
        dec("d3", "block", "hate.speech", 1000), dec("p", "review", "hate.speech", 1000))}  # fmt: skip
    reviews = [rv("d1", "upheld", 1100), rv("d2", "overturned", 3000, who="bob"),
               rv("d1", "overturned", 1200)]  # a later verdict supersedes  # fmt: skip
    s = stats(ds, reviews, [ds["p"]], [{"created_at": 0, "decided_at": 60}], 900, 2500)
    gore = next(r for r in s["precision"] if r["category"] == "violence.gore")
    assert gore["reviewed"] == 2 and gore["precision"] == 0.0
    assert s["reversal_rate"] == 1.0 and s["sla_compliance"] == 0.5
    assert s["backlog"] == 1 and s["breached"] == 1 and s["oldest_s"] == 1500
    assert s["statement_share"] == 0.0  # the block carries no statement here
    # clearing an overturned review restricted nothing: it owes no statement
    ds["c"] = dec("c", "allow", "violence.gore", 1300, corrects="d2")
    assert stats(ds, reviews, [], [], 900, 2500)["actions"] == 1
    assert s["appeal_turnaround_p50_s"] == 60


def test_console_verdict_ids_are_the_workers() -> None:
    """A verdict sent twice, from the console or `review resolve`, is one review."""
    from framewatch import records
    from streams.review import review_id

    assert records.stable_id("review", "d1", "overturned") == review_id("d1", "overturned")
    # deciding an appeal is a verdict of its own, though an earlier review said the same
    assert records.stable_id("review", "d1", "upheld", "a1") == review_id("d1", "upheld", "a1")
    assert review_id("d1", "upheld", "a1") != review_id("d1", "upheld")


def test_queue_pages_stay_sorted_as_reviews_come_and_go() -> None:
    """The index keeps its sorted queue up to date in place: arrivals, verdicts, appeals."""
    from console.index import Index, Item

    ix = Index()
    for i, at in enumerate([50, 10, 40, 30, 20]):
        ix.add(dec(f"r{i}", "review", "hate.speech", at))
    assert [i.item_id for i in ix.queue(None, 900).items] == ["r1", "r4", "r3", "r2", "r0"]
    ix.add(rv("r4", "upheld", 100, cat="hate.speech"))
    ix.add(dec("r5", "review", "hate.speech", 15))
    red = dec("red", "review", "child_safety", 99).model_copy(update={"red_line": True})
    ix.add(red)
    appeal = Item("appeal", "ap", dec("b", "block", "hate.speech", 5), 25.0, 60)
    page = ix.queue(None, 900, [appeal], start=1, stop=4, now=950)
    assert [i.item_id for i in page.items] == ["ap", "r1", "r5"]  # after the red line
    assert page.total == 7 and page.breached == 5  # r1, r5, r3, r2 (decided < 50), the appeal
    assert ix.queue({"tb"}, 900).total == 0


def test_an_erased_account_loses_its_review_notes_in_the_console() -> None:
    from console.index import Index
    from framewatch.records import AccountForget

    ix = Index()
    ix.add(dec("d1", "block", "violence.gore", 1000))
    ix.add(rv("d1", "upheld", 1100, note="the user's face is visible"))
    other = dec("d2", "block", "violence.gore", 1000).model_copy(update={"account_id": "b"})
    ix.add(other)
    ix.add(rv("d2", "upheld", 1100, note="keep me").model_copy(update={"account_id": "b"}))
    ix.add(AccountForget(forget_id="f1", tenant="ta", account_id="a", requested_at=1200))
    assert [v.note for v in ix.verdicts["d1"]] == [None]
    assert [v.outcome for v in ix.verdicts["d1"]] == ["upheld"]  # the outcome stays (numbers)
    assert [v.note for v in ix.verdicts["d2"]] == ["keep me"]  # another account keeps its own
    # a verdict read after the erasure (another partition, read later) arrives without its note
    ix.add(rv("d1", "overturned", 1300, note="late note"))
    assert {v.note for v in ix.verdicts["d1"]} == {None}
    assert all(r.note is None for r in ix.reviews if r.account_id == "a")
    # another tenant's account of the same id is another account
    ix.add(rv("d9", "upheld", 1400, note="tb's").model_copy(update={"tenant": "tb"}))
    assert ix.verdicts["d9"][0].note == "tb's"
