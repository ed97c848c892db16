"""DSA statements: what the builder makes passes the schema; a broken one is refused by name."""

from __future__ import annotations

import pytest

from framewatch import taxonomy
from framewatch.records import Decision, Reason
from framewatch.settings import load_settings
from streams import statement


def block(category: str = "child_safety.csam", red_line: bool = True) -> Decision:
    return Decision(
        decision_id="d1",
        stream_id="s1",
        account_id="a1",
        action="block",
        previous_state="ok",
        reasons=[
            Reason(
                category=category,
                score=0.9,
                threshold=0.5,
                frames_seen=1,
                frames_window=1,
                rule="r",
                source="model",
            )
        ],
        red_line=red_line,
        policy_version="p1",
        evidence_frame_ids=["s1-f0"],
        first_frame_id="s1-f0",
        captured_at=1.7e9,
        decided_at=1.7e9,
    )


def test_block_statement_is_valid_and_fully_automated_for_red_lines() -> None:
    s = statement.for_decision(block(), taxonomy.load(), load_settings())
    assert s.automated_decision == "AUTOMATED_DECISION_FULLY"
    assert s.category == "STATEMENT_CATEGORY_PROTECTION_OF_MINORS"
    assert s.puid == "d1" and "child_safety.csam scored 0.90" in s.decision_facts


def test_invalid_statement_is_refused_naming_the_field() -> None:
    good = statement.for_decision(block("violence.gore", False), taxonomy.load(), load_settings())
    bad = good.model_copy(update={"category": "NOT_A_CATEGORY"})
    with pytest.raises(statement.StatementError, match="invalid at category"):
        statement.validate(bad)
    with pytest.raises(statement.StatementError, match="decision_visibility or decision_account"):
        statement.validate(good.model_copy(update={"decision_visibility": []}))
