"""DSA statements: every kind the worker writes passes the Transparency Database's own rules.

The oracle is tests/streams/dsa_rules.py, the database's validation re-implemented from its PHP
source (not from our model); the negative cases prove the oracle and our model both refuse.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from framewatch import dsa, taxonomy
from framewatch.records import Decision, Enforcement, Reason, ReviewOutcome
from framewatch.settings import load_settings
from streams import review, statement
from streams.processor import Processor, ReviewProcessor
from tests.streams import dsa_rules
from tests.streams.helpers import scores

TAX = taxonomy.load()
NOW = time.time()
T0 = NOW - 3600


@pytest.fixture(scope="module")
def proc() -> Processor:
    return Processor(load_settings(streams={"policy_dir": "/nonexistent"}))


def accepted(stm: Any) -> dict[str, Any]:
    """The API body of a statement, asserted to be accepted by the database's rules and free of
    the account, stream and reviewer names (the database publishes it: no personal data)."""
    body = stm.to_api()
    assert dsa_rules.check(body) == {}, body
    text = json.dumps(body)
    for name in ("acct1", "a1", "st0", "s-fix", "s1", "ana"):
        assert f" {name} " not in text and f"{name}:" not in text, (name, body["decision_facts"])
    return body


def block(category: str, red_line: bool = False, source: str = "model") -> Decision:
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
                source=source,
            )
        ],
        red_line=red_line,
        policy_version="p1",
        first_frame_id="s1-f0",
        captured_at=T0,
        decided_at=NOW,
    )


def test_every_taxonomy_node_maps_to_a_current_category_and_its_keywords() -> None:
    seen = set()
    for node in TAX:
        body = accepted(statement.for_decision(block(node.path), TAX, load_settings()))
        assert body["category"] in dsa_rules.STATEMENT_CATEGORIES
        assert body["territorial_scope"] == dsa_rules.EU_27  # not ["EU"]
        assert body["content_date"] and body["content_type"] == ["CONTENT_TYPE_VIDEO"]
        seen.add(body["category"])
        for kw in body.get("category_specification", []):
            assert kw in dsa.KEYWORDS_OF[body["category"]]
    assert "STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT" not in seen
    assert "STATEMENT_CATEGORY_NON_CONSENSUAL_BEHAVIOUR" not in seen
    sexual = statement.for_decision(block("sexual.explicit.sexual_activity"), TAX, load_settings())
    assert sexual.category == "STATEMENT_CATEGORY_OTHER_VIOLATION_TC"
    assert sexual.category_specification == ["KEYWORD_ADULT_SEXUAL_MATERIAL"]
    ncii = statement.for_decision(block("known_bad.ncii_bank", True), TAX, load_settings())
    assert ncii.category == "STATEMENT_CATEGORY_CYBER_VIOLENCE"


def test_worker_blocks_per_l1_domain_and_hash_red_line(proc: Processor) -> None:
    """The worker's own path (scores -> state machine -> statement) for each L1 domain; the
    domains the shipped policy caps at review (alcohol, gambling) go to a person instead."""
    kinds, reviewed = {}, set()
    for root in (c for c in TAX if c.level == 1 and c.path != "signal"):
        leaf = next(c.path for c in TAX if c.path.startswith(root.path) and not c.children)
        state = None
        for i in range(6):
            res = proc.on_scores(state, scores(i, f"s-{root.path}", t0=T0, cats={leaf: 0.99}))
            state = res.state
            for o in res.outputs:
                if isinstance(o.record, Decision) and o.record.action == "block":
                    kinds[root.path] = accepted(o.record.statement)
                if isinstance(o.record, Decision) and o.record.action == "review":
                    reviewed.add(root.path)
    capped = {c.path for c in TAX if c.level == 1 and c.path != "signal"
              and proc.policies.policy.rule(c.path).at_most == "review"}  # fmt: skip
    assert capped == {"alcohol", "gambling"}
    assert capped <= reviewed and not capped & set(kinds)
    assert set(kinds) == {c.path for c in TAX if c.level == 1} - {"signal"} - capped  # 10 domains
    assert kinds["child_safety"]["automated_decision"] == "AUTOMATED_DECISION_FULLY"
    assert kinds["child_safety"]["decision_ground"] == "DECISION_GROUND_ILLEGAL_CONTENT"
    match = {"bank": "csam", "entry_id": "e1", "distance": 3, "threshold": 31,
             "role": "red_line", "category": "known_bad.csam_bank"}  # fmt: skip
    res = proc.on_scores(None, scores(0, "s-hash", t0=T0, matches=[match]))
    [d] = [o.record for o in res.outputs if isinstance(o.record, Decision)]
    body = accepted(d.statement)
    assert body["category"] == "STATEMENT_CATEGORY_PROTECTION_OF_MINORS"
    assert body["category_specification"] == ["KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL"]


def _blocks(proc: Processor, n: int, cat: str = "violence.gore") -> list[Decision]:
    out = []
    for k in range(n):
        state = None
        for i in range(4):
            res = proc.on_scores(state, scores(i, f"st{k}", t0=T0 + k, cats={cat: 0.99}))
            state = res.state
            out += [o.record for o in res.outputs if getattr(o.record, "action", "") == "block"]
    return out


def test_each_ladder_step_correction_and_reversal(proc: Processor) -> None:
    blocks = _blocks(proc, 12)
    led: dict[str, Any] | None = None
    steps: list[Enforcement] = []
    for d in blocks:
        led, outs = proc.on_decision(led, d)
        steps += [o.record for o in outs]
    assert [e.action for e in steps] == ["warn", "restrict", "suspend_stream", "suspend_account"]
    for e in steps:
        body = accepted(e.statement)
        assert body["content_date"] == statement._date(T0)  # the content's day, not missing
    assert "decision_account" not in accepted(steps[0].statement)  # a warning restricts nothing
    assert accepted(steps[3].statement)["decision_account"] == "DECISION_ACCOUNT_TERMINATED"

    # correction: a reviewer overturns a block (with a note longer than the database takes)
    state, blocked = None, []
    for i in range(4):
        res = proc.on_scores(state, scores(i, "s-fix", t0=T0, cats={"violence.gore": 0.99}))
        state = res.state
        blocked += [o.record for o in res.outputs if getattr(o.record, "action", "") == "block"]
    rp = ReviewProcessor(proc)
    res = rp.on_review(state, verdict(blocked[0], note="x" * 6000))
    [fix] = [o.record for o in res.outputs if isinstance(o.record, Decision)]
    body = accepted(fix.statement)
    assert body["end_date_visibility_restriction"] and len(body["decision_facts"]) == 5000
    # reversal: three blocks put an account on 'restrict'; overturning one steps it down
    led = None
    three = blocks[:3]
    for d in three:
        led, _ = proc.on_decision(led, d)
    assert led is not None
    led, outs = rp.on_ledger(led, verdict(three[0]))
    [rev] = [o.record for o in outs]
    body = accepted(rev.statement)
    assert (rev.previous_action, rev.action) == ("restrict", "warn")
    assert body["content_date"] == statement._date(T0) and body["end_date_account_restriction"]


def verdict(d: Decision, **kw: Any) -> ReviewOutcome:
    return ReviewOutcome(review_id=review.review_id(d.decision_id, "overturned"),
                         decision_id=d.decision_id, stream_id=d.stream_id,
                         account_id=d.account_id, outcome="overturned", action="block",
                         category="violence.gore", reviewer="ana", resolved_at=NOW, **kw)  # fmt: skip


def test_content_date_falls_back_when_the_camera_clock_is_impossible() -> None:
    d = block("violence.gore").model_copy(update={"captured_at": 1000.0})
    body = accepted(statement.for_decision(d, TAX, load_settings()))
    assert body["content_date"] == body["application_date"]


def good() -> dict[str, Any]:
    return statement.for_decision(block("violence.gore"), TAX, load_settings()).to_api()


BAD: list[tuple[str, dict[str, Any]]] = [
    ("territorial_scope", {"territorial_scope": ["EU"]}),
    ("content_date", {"content_date": None}),
    ("category", {"category": "STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT"}),
    ("category", {"category": "STATEMENT_CATEGORY_NON_CONSENSUAL_BEHAVIOUR"}),
    ("category_specification", {"category_specification": ["KEYWORD_DANGEROUS_TOYS"]}),
    ("decision_visibility", {"decision_visibility": []}),
    ("decision_visibility_other", {"decision_visibility": ["DECISION_VISIBILITY_OTHER"]}),
    ("puid", {"puid": "123.STATE sor/category"}),
    ("puid", {"puid": "a" * 501}),
    ("decision_facts", {"decision_facts": "   "}),
    ("decision_facts", {"decision_facts": "x" * 5001}),
    ("application_date", {"application_date": "2019-12-31"}),
    ("application_date", {"application_date": "2025-02-30"}),
    ("content_date", {"content_date": "1999-12-31"}),
    ("end_date_account_restriction", {"end_date_account_restriction": "2038-01-02"}),
    ("content_type", {"content_type": []}),
    ("automated_decision", {"automated_decision": "Yes"}),
    ("decision_ground_reference_url", {"decision_ground_reference_url": "terms of service"}),
    ("incompatible_content_ground", {"incompatible_content_ground": None}),
    ("illegal_content_legal_ground", {"decision_ground": "DECISION_GROUND_ILLEGAL_CONTENT"}),
]


@pytest.mark.parametrize(("field", "change"), BAD, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD)])
def test_the_database_and_our_model_both_refuse(field: str, change: dict[str, Any]) -> None:
    body = {**good(), **change}
    body = {k: v for k, v in body.items() if v is not None}
    assert field in dsa_rules.check(body)  # the oracle can fail
    with pytest.raises(statement.StatementError, match="invalid at"):
        statement.validate(body)


def test_model_refuses_what_the_database_would_silently_drop() -> None:
    # exclude_unless: the database drops an illegal-content ground on an incompatible statement
    body = {**good(), "illegal_content_legal_ground": "Art. 5"}
    assert dsa_rules.check(body) == {}
    with pytest.raises(statement.StatementError, match="only allowed when decision_ground"):
        statement.validate(body)


def test_a_retired_category_in_a_taxonomy_extension_fails_at_load() -> None:
    from framewatch.errors import TaxonomyError

    tree = {"sexual": {"dsa": "STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT"}}
    with pytest.raises(TaxonomyError, match="not a category of the DSA Transparency Database"):
        taxonomy.build(("built-in", {"sexual": {}}), ("ext.yaml", tree))
    tree = {"violence": {"dsa": "STATEMENT_CATEGORY_VIOLENCE", "keywords": ["KEYWORD_NUDITY"]}}
    with pytest.raises(TaxonomyError, match="do not belong to STATEMENT_CATEGORY_VIOLENCE"):
        taxonomy.build(("ext.yaml", tree))


def test_territorial_scope_settings_take_eu_and_refuse_non_eea() -> None:
    s = load_settings(streams={"territorial_scope": {"acme": ["EU", "NO"]}})
    assert s.streams.territorial_scope["acme"] == sorted([*dsa_rules.EU_27, "NO"])
    from framewatch.errors import SettingsError

    with pytest.raises(SettingsError, match="not accepted by the DSA Transparency Database"):
        load_settings(streams={"default_territorial_scope": ["GB"]})


def test_the_published_schema_says_the_same() -> None:
    """framewatch/schemas/decision.v1.json (generated from the model) refuses what the database
    refuses, conditional fields included, and takes what the worker writes."""
    import json

    import jsonschema

    from framewatch import records
    from framewatch.schemagen import SCHEMA_DIR, filename

    schema = json.loads((SCHEMA_DIR / filename("decision")).read_text())
    check = jsonschema.Draft202012Validator(schema)
    d = block("violence.gore")
    rec = json.loads(records.encode(d.model_copy(update={"statement": good_model()})))
    assert list(check.iter_errors(rec)) == []
    for change in ({"territorial_scope": ["EU"]}, {"illegal_content_legal_ground": "Art. 5"},
                   {"decision_visibility": []}, {"content_date": None}, {"puid": "a b"}):  # fmt: skip
        bad = {**rec, "statement": {**rec["statement"], **change}}
        assert list(check.iter_errors(bad)), change


def good_model() -> Any:
    return statement.for_decision(block("violence.gore"), TAX, load_settings())
