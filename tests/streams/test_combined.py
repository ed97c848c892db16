"""Combined rules: several signals together give a category; signals alone act at most as told.

Pure: the policy engine (parse, explain, evaluate) and the stream state machine, no Kafka.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from framewatch import combine, taxonomy
from streams.policy import PolicyError, evaluate, explain, load_dir, parse_file
from streams.state import StreamState, step
from tests.streams.helpers import scores

TAX = taxonomy.load()
MINOR, SEX, FACE = "signal.minor_possible", "sexual", "signal.face.female"

WEAPON_FILE = """scope: {tenant: acme}
combined:
  armed_person:
    all: {violence.weapons: 0.6, signal.face: 0.5}
    then: violence.graphic
    within: 3
  minor_sexual: {all: {signal.minor_possible: 0.5, sexual: 0.5}, then: child_safety.minor_sexualization, enabled: false}
rules:
  violence.graphic: {review: 0.5, block: 0.9, smoothing: {k: 1, n: 1}}
"""


def run(frames: list[dict[str, float]], policy=None, **kw):  # type: ignore[no-untyped-def]
    policy = policy or load_dir(None, TAX)
    st, out = StreamState(), []
    for i, cats in enumerate(frames):
        o = step(st, scores(i, cats=cats, **kw), policy, decided_at=0.0)
        st = o.state
        if o.decision:
            out.append(o)
    return st, out


def test_possible_minor_and_sexual_in_one_frame_is_a_child_safety_red_line() -> None:
    _, out = run([{MINOR: 0.2, SEX: 0.1}, {MINOR: 0.7, SEX: 0.62}])
    (o,) = out
    d = o.decision
    assert d is not None and d.action == "block" and d.red_line and o.alert is not None
    top = d.reasons[0]
    assert top.category == "child_safety.minor_sexualization"
    assert top.rule == "default.yaml:combined.minor_sexual"
    assert top.score == pytest.approx(0.62)  # the weaker signal
    assert d.evidence_frame_ids == ["s1-f1"]


def test_either_signal_alone_does_not_make_the_combination() -> None:
    _, out = run([{MINOR: 0.95, SEX: 0.3}] * 2 + [{MINOR: 0.3, SEX: 0.6}])
    assert all(not o.decision.red_line for o in out)  # type: ignore[union-attr]
    assert all("child_safety" not in r.category for o in out for r in o.decision.reasons)  # type: ignore[union-attr]


def test_a_possible_minor_alone_at_most_reviews_and_a_face_never_acts() -> None:
    st, out = run([{MINOR: 1.0, FACE: 1.0}] * 8)
    assert [o.decision.action for o in out] == ["review"]  # type: ignore[union-attr]
    assert out[0].decision.reasons[0].category == MINOR  # type: ignore[union-attr]
    assert FACE not in st.history  # a signal with at_most none is not even kept
    _, out = run([{FACE: 1.0}] * 8)
    assert out == []


def test_within_n_frames_signals_may_come_from_different_frames(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(WEAPON_FILE)
    p = load_dir(tmp_path, TAX)
    # the weapon at frame 0, the face at frame 2: within 3 frames, so frame 2 fires
    _, out = run([{"violence.weapons.knife": 0.8}, {}, {FACE: 0.7}], p, tenant="acme")
    (o,) = out
    r = o.decision.reasons[0]  # type: ignore[union-attr]
    assert (o.decision.action, r.category, r.rule) == (  # type: ignore[union-attr]
        "review",
        "violence.graphic",
        str(tmp_path / "acme.yaml") + ":combined.armed_person",
    )
    assert r.score == pytest.approx(0.7)
    # four frames apart is too far; and another tenant has no such rule
    _, out = run([{"violence.weapons.knife": 0.8}, {}, {}, {FACE: 0.7}], p, tenant="acme")
    assert out == []
    _, out = run([{"violence.weapons.knife": 0.8}, {FACE: 0.7}], p, tenant="other")
    assert out == []


def test_a_more_specific_file_can_disable_an_inherited_combined_rule(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(WEAPON_FILE)
    p = load_dir(tmp_path, TAX)
    frames = [{MINOR: 0.9, SEX: 0.9}]
    assert run(frames, p, tenant="other")[1][0].decision.red_line  # type: ignore[union-attr]
    assert run(frames, p, tenant="acme")[1] == []


def test_the_signal_window_survives_json_and_replays_do_not_count_twice(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(WEAPON_FILE)
    p = load_dir(tmp_path, TAX)
    st = step(StreamState(), scores(0, cats={"violence.weapons": 0.8}, tenant="acme"), p).state
    st = StreamState.from_json(st.to_json())
    assert st.signals == [{"violence.weapons": 0.8}]
    o = step(st, scores(1, cats={FACE: 0.6}, tenant="acme"), p)
    assert o.decision is not None and o.decision.action == "review"
    assert len(o.state.signals) == 2  # within 3: this frame and the one before are kept
    # a frame written before combined rules existed still loads
    assert StreamState.from_json({"state": "ok", "history": {}}).signals == []


def test_check_and_explain_decide_the_combination_like_the_worker() -> None:
    p = load_dir(None, TAX)
    v = evaluate(p, {MINOR: 0.7, SEX: 0.62})
    assert (v.action, v.red_line) == ("block", True)
    assert "combined rule minor_sexual" in v.rationale
    assert "default.yaml:combined.minor_sexual" in v.rationale
    assert evaluate(p, {MINOR: 1.0}).action == "review"
    assert evaluate(p, {FACE: 1.0}).action == "allow"
    rows = explain(p, {MINOR: 0.85, SEX: 0.3})
    unmet = [r for r in rows if r["category"] == "child_safety.minor_sexualization"]
    assert unmet[0]["verdict"] == "none"
    assert "not met" in unmet[0]["why"] and "sexual 0.30 < 0.5" in unmet[0]["why"]


@pytest.mark.parametrize(
    ("body", "line", "needle"),
    [
        ("combined:\n  x:\n    all: {sexual: 0.5, signal.nope: 0.5}\n    then: hate\n", 3,
         "unknown category 'signal.nope'"),
        ("combined:\n  x:\n    all: {sexual: 0.5, hate: 0.5}\n    then: child_safety.nah\n", 4,
         "unknown category 'child_safety.nah'"),
        ("combined:\n  x:\n    all: {sexual: 0.5}\n    then: hate\n", 3, "at least 2"),
        ("combined:\n  x:\n    all: {sexual: 0.5, hate: 1.5}\n    then: drugs\n", 3,
         "between 0 and 1"),
        ("combined:\n  x:\n    all: {sexual: 0.5, hate: 0.5}\n    then: hate.speech\n", 4,
         "cannot feed itself"),
        ("combined:\n  x:\n    all: {sexual: 0.5, hate: 0.5}\n    then: drugs\n    within: 99\n",
         5, "less than or equal to 64"),
        ("combined:\n  x:\n    all: {sexual: 0.5, hate: 0.5}\n    then: drugs\n    witin: 2\n",
         5, "unknown key 'witin'"),
        ("rules:\n  child_safety.csam: {at_most: review}\n", 2, "cannot relax"),
        ("rules:\n  hate: {red_line: true, at_most: none}\n", 2, "contradicts"),
    ],
)  # fmt: skip
def test_bad_combined_rules_are_refused_with_file_line_and_reason(
    body: str, line: int, needle: str
) -> None:
    with pytest.raises(PolicyError) as ei:
        parse_file("p.yaml", body, TAX)
    assert needle in ei.value.reason
    assert ei.value.line == line
    assert str(ei.value).startswith(f"p.yaml:{line}: ")


def test_derive_takes_the_highest_value_under_each_signal_node() -> None:
    (rule,) = parse_file(
        "p.yaml",
        "combined:\n  x: {all: {sexual: 0.5, signal.face: 0.5}, then: hate}\n",
        TAX,
    ).combined.values()
    got = combine.derive(
        [rule], {"sexual.explicit.exposed_anus": 0.9, "sexual": 0.2, "signal.face.male": 0.55}
    )
    assert [(d.rule.name, d.score) for d in got] == [("x", 0.55)]
    assert combine.derive([rule], {"sexual": 0.9}) == []


# what the object detector (scoring/nanodet.py) gives on devkit/data/eval: a knife on a table
# 0.34-0.37 (tests/scoring/test_nanodet.py checks these reach the rule), a person 0.71-0.88
KNIFE, PERSON = {"violence.weapons.knife": 0.35}, {"signal.person": 0.73}


def test_a_knife_and_a_person_within_5_frames_go_to_review_and_never_block() -> None:
    # the detector runs on every 5th sample: what it saw at frame 0 still counts at frame 1,
    # a frame it skipped, so the 2-of-5 smoothing is reached there
    _, out = run([{**KNIFE, **PERSON}, {}, {}, {}, {}, {}, {}])
    (o,) = out
    d = o.decision
    assert d is not None and d.action == "review" and not d.red_line
    assert d.evidence_frame_ids[-1] == "s1-f1"  # decided on the skipped frame 1
    r = d.reasons[0]
    assert (r.category, r.rule) == ("violence.armed_person", "default.yaml:combined.armed_person")
    assert r.score == pytest.approx(0.35)
    # the knife at 0 and the person at 2: held at frames 2-4, review at 3
    (o,) = run([KNIFE, {}, PERSON, {}, {}, {}])[1]
    assert o.decision is not None and o.decision.evidence_frame_ids[-1] == "s1-f3"
    # a knife alone, a person alone, or the two 5 frames apart: nothing
    assert run([KNIFE] * 8)[1] == [] and run([PERSON] * 8)[1] == []
    assert run([KNIFE, {}, {}, {}, {}, PERSON, PERSON])[1] == []
    # a firearm held for 12 frames: the weapon's own rule may block, the combination never does
    _, out = run([{"violence.weapons.firearm": 0.99, "signal.person": 0.95}] * 12)
    reasons = [(o.decision.action, o.decision.reasons[0].category) for o in out]  # type: ignore[union-attr]
    assert reasons[0] == ("review", "violence.armed_person")
    assert ("block", "violence.armed_person") not in reasons


def test_explain_names_the_armed_person_rule() -> None:
    p = load_dir(None, TAX)
    v = evaluate(p, {**KNIFE, **PERSON})
    assert v.action == "review" and "combined rule armed_person" in v.rationale
    rows = explain(p, {**KNIFE, "signal.person": 0.2})
    unmet = [r for r in rows if r["category"] == "violence.armed_person"]
    assert "not met" in unmet[0]["why"] and "signal.person 0.20 < 0.5" in unmet[0]["why"]
