"""Strike ledger and statements: idempotent counting, decay, ladder steps only, DSA fields."""

from __future__ import annotations

from framewatch import records, taxonomy
from framewatch.records import Decision, Reason
from framewatch.settings import load_settings
from streams import ledger, statement
from streams.policy import load_dir

TAX = taxonomy.load()
POLICY = load_dir(None, TAX)


def block(n: int, cat: str = "violence.gore", at: float = 1000.0, red: bool = False) -> Decision:
    return Decision(
        decision_id=f"d{n}",
        stream_id=f"s{n}",
        account_id="acct",
        action="block",
        previous_state="ok",
        reasons=[
            Reason(
                category=cat,
                score=0.9,
                threshold=0.85,
                frames_seen=3,
                frames_window=5,
                rule="default.yaml:violence.gore",
            )
        ],
        red_line=red,
        policy_version=POLICY.version,
        first_frame_id="f",
        captured_at=at,
        decided_at=at,
    )


def test_steps_only_on_ladder_changes_and_replays_count_once() -> None:
    led = ledger.Ledger("acct")
    out = [ledger.apply(led, block(i, at=1000.0 + i), POLICY, issued_at=0.0) for i in range(7)]
    out += [ledger.apply(led, block(i, at=1000.0 + i), POLICY, issued_at=0.0) for i in range(7)]
    steps = [e.action for e in out if e is not None]
    assert steps == ["warn", "restrict", "suspend_stream"]
    assert len(led.strikes) == 7
    assert led.counts(1010.0) == {"1h": 7, "24h": 7, "30d": 7}


def test_strikes_decay_with_half_life() -> None:
    led = ledger.Ledger("acct")
    ledger.apply(led, block(1, at=0.0), POLICY)
    t = led.totals(30 * 86400.0, POLICY.enforcement().half_life_days)
    assert abs(t["violence.gore"] - 0.75) < 1e-6  # weight 1.5 halved after 30 days


def test_red_line_weight_jumps_the_ladder_and_removal_reverses() -> None:
    led = ledger.Ledger("acct")
    e = ledger.apply(led, block(1, cat="child_safety.csam", red=True), POLICY, issued_at=0.0)
    assert e is not None and e.action == "suspend_stream" and e.ladder_step == 3
    r = ledger.remove(led, "d1", POLICY, at=1001.0, issued_at=0.0)
    assert r is not None and r.action == "none" and r.reverses == e.enforcement_id
    assert led.strikes == []


def test_review_and_allow_decisions_are_not_strikes() -> None:
    led = ledger.Ledger("acct")
    d = block(1).model_copy(update={"action": "review"})
    assert ledger.apply(led, d, POLICY) is None and led.strikes == []


def test_statements_carry_dsa_fields_and_validate() -> None:
    s = load_settings(streams={"territorial_scope": {"default": ["DE", "FR"]}})
    t = 1.79e9  # the database takes dates from 2020 on (application) and 2000 on (content)
    st = statement.for_decision(block(1, cat="child_safety.csam", at=t, red=True), TAX, s)
    assert st.category == "STATEMENT_CATEGORY_PROTECTION_OF_MINORS"
    assert st.automated_decision == "AUTOMATED_DECISION_FULLY"
    assert st.decision_ground == "DECISION_GROUND_ILLEGAL_CONTENT"
    assert st.territorial_scope == ["DE", "FR"] and st.content_type == ["CONTENT_TYPE_VIDEO"]
    assert "child_safety.csam scored 0.90" in st.decision_facts
    st2 = statement.for_decision(block(2, at=t), TAX, s)
    assert st2.automated_decision == "AUTOMATED_DECISION_PARTIALLY"
    assert st2.decision_ground == "DECISION_GROUND_INCOMPATIBLE_CONTENT"
    led = ledger.Ledger("acct")
    e = ledger.apply(led, block(3), POLICY)
    assert e is not None
    se = statement.for_enforcement(e, "violence.gore", TAX, s, red_line=False, content_at=t)
    assert se.puid == e.enforcement_id and se.category == "STATEMENT_CATEGORY_VIOLENCE"
    assert records.encode(e.model_copy(update={"statement": se}))


def test_prune_bounds_the_row_without_stepping_the_account() -> None:
    led = ledger.Ledger("a1")
    for i in range(8):
        ledger.apply(led, block(i, at=1000.0 + i * 86400.0), POLICY, issued_at=0.0)
    step = led.step
    keep = ledger.Keep(seen=3, strike_days=2.0, history=1)
    ledger.prune(led, at=1000.0 + 7 * 86400.0, keep=keep)
    assert led.seen == ["d5", "d6", "d7"] and len(led.history) == 1
    assert [s["decision_id"] for s in led.strikes] == ["d5", "d6", "d7"]
    assert led.step == step
