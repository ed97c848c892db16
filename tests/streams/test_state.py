"""State machine: only transitions, smoothing, red-line fast lane, deterministic ids."""

from __future__ import annotations

from framewatch import records, taxonomy
from streams.policy import load_dir
from streams.state import StreamState, step
from tests.streams.helpers import scores

POLICY = load_dir(None, taxonomy.load())


def run(frames: list, st: StreamState | None = None) -> tuple[StreamState, list]:
    st = st or StreamState()
    out = []
    for sc in frames:
        o = step(st, sc, POLICY, decided_at=0.0)
        st = o.state
        if o.decision:
            out.append(o)
    return st, out


def test_clean_stream_emits_nothing() -> None:
    st, out = run([scores(i, cats={"violence.gore": 0.1}) for i in range(20)])
    assert out == [] and st.state == "ok"


def test_single_spike_is_smoothed_away() -> None:
    cats = [0.1, 0.95, 0.1, 0.1, 0.1, 0.1]
    _, out = run([scores(i, cats={"violence.gore": c}) for i, c in enumerate(cats)])
    assert out == []


def test_review_then_block_then_nothing_more() -> None:
    cats = [0.6, 0.6, 0.6, 0.9, 0.9, 0.9, 0.9, 0.9]
    st, out = run([scores(i, cats={"violence.gore": c}) for i, c in enumerate(cats)])
    assert [o.decision.action for o in out] == ["review", "block"]
    rev, blk = out[0].decision, out[1].decision
    assert rev.first_frame_id == "s1-f0" and rev.evidence_frame_ids == ["s1-f0", "s1-f1", "s1-f2"]
    assert rev.decision_id == records.stable_id("default/s1", "review", "s1-f0")
    assert blk.previous_state == "review" and blk.reasons[0].frames_seen == 3
    assert blk.policy_version == POLICY.version and not blk.red_line
    assert st.state == "blocked"
    assert all(o.alert is None for o in out)


def test_review_clears_with_allow_after_quiet_period() -> None:
    frames = [scores(i, cats={"hate.speech": 0.6}) for i in range(3)]
    frames += [scores(i, cats={"hate.speech": 0.1}, dt=10.0, t0=973.0) for i in range(3, 14)]
    st, out = run(frames)
    assert [o.decision.action for o in out] == ["review", "allow"]
    assert out[1].decision.previous_state == "review" and st.state == "ok"


def test_red_line_blocks_on_first_frame_with_alert() -> None:
    st, out = run([scores(0, cats={"child_safety.csam": 0.7})])
    assert len(out) == 1
    d, a = out[0].decision, out[0].alert
    assert d.action == "block" and d.red_line and st.state == "blocked"
    assert a is not None and a.severity == "critical" and a.category == "child_safety.csam"
    assert a.incident_id == records.stable_id("incident", "default/s1", "s1-f0")


def test_red_line_hash_match_blocks_and_review_match_reviews() -> None:
    m = {"bank": "csam", "entry_id": "e1", "distance": 10, "threshold": 31}
    _, out = run(
        [scores(0, matches=[{**m, "role": "red_line", "category": "known_bad.csam_bank"}])]
    )
    assert out[0].decision.action == "block" and out[0].alert is not None
    assert out[0].decision.reasons[0].source == "hash_bank"
    _, out = run(
        [scores(0, matches=[{**m, "role": "review", "category": "known_bad.review_bank"}])]
    )
    assert out[0].decision.action == "review" and out[0].alert is None


def test_replay_gives_same_ids_and_duplicates_are_ignored() -> None:
    frames = [scores(i, cats={"violence.gore": c}) for i, c in enumerate([0.9, 0.9, 0.9, 0.9])]
    _, out1 = run(frames)
    _, out2 = run(frames + frames)
    assert [o.decision.decision_id for o in out1] == [o.decision.decision_id for o in out2]
    assert len(out2) == len(out1)


def test_state_roundtrips_as_json() -> None:
    st, _ = run([scores(i, cats={"hate.speech": 0.6}) for i in range(3)])
    again = StreamState.from_json(st.to_json())
    assert again == st and again.state == "review"


def test_hold_smoothing_needs_the_score_held() -> None:
    # violence.weapons: hold 10 s at review 0.7
    frames = [scores(i, cats={"violence.weapons": 0.8}, dt=2.0) for i in range(5)]
    _, out = run(frames)
    assert out == []
    _, out = run([*frames, scores(5, cats={"violence.weapons": 0.8}, dt=2.0)])
    assert [o.decision.action for o in out] == ["review"]


def test_channel_override_changes_outcome(tmp_path) -> None:
    (tmp_path / "kids.yaml").write_text(
        "scope: {channel: kids}\nrules:\n  suggestive: {review: 0.2, block: 0.3, smoothing: {k: 1, n: 1}}\n"
    )
    pol = load_dir(tmp_path, taxonomy.load())
    o = step(StreamState(), scores(0, cats={"suggestive.swimwear": 0.5}, channel="kids"), pol)
    assert o.decision is not None and o.decision.action == "block"
    o = step(StreamState(), scores(0, cats={"suggestive.swimwear": 0.5}), pol)
    assert o.decision is None


def test_history_keeps_only_what_the_rules_can_look_at() -> None:
    # the whole state goes to the table's changelog on every frame: it must not grow with the
    # stream's age. violence.gore is 3 of 5 (keep 5); weapons is held 10 s (keep the run >= 0.7)
    weapons = [0.1] * 30 + [0.8] * 4
    frames = [
        scores(i, cats={"violence.gore": 0.1, "violence.weapons": w}) for i, w in enumerate(weapons)
    ]
    st, out = run(frames)
    assert out == []
    assert [h[2] for h in st.history["violence.gore"]] == [f"s1-f{i}" for i in range(29, 34)]
    assert [h[1] for h in st.history["violence.weapons"]] == [0.8] * 4
    st, out = run([scores(34, cats={"violence.weapons": 0.1})], st)
    assert [h[1] for h in st.history["violence.weapons"]] == [0.1]
    # the trimmed history still decides exactly as before: a held run blocks/reviews on time
    st, out = run([scores(i, cats={"violence.weapons": 0.8}, dt=2.0) for i in range(35, 42)], st)
    assert [o.decision.action for o in out] == ["review"]
    assert out[0].decision.first_frame_id == "s1-f35"


def test_a_stream_back_with_seq_restarting_is_moderated() -> None:
    """Issue 14.1: a long safe first life, then the same stream id back from a new ingester
    (seq from 0 again, new session) with a red line: blocked, not dropped as a replay."""
    first = [scores(i, cats={"violence.gore": 0.05}, session="life-1") for i in range(60)]
    back = [
        scores(i, cats={"child_safety.csam": 0.95}, t0=5000.0, session="life-2").model_copy(
            update={"frame_id": f"life2-f{i}"}
        )
        for i in range(2)
    ]
    st, out = run(first + back)
    assert [(o.decision.action, o.decision.first_frame_id) for o in out] == [("block", "life2-f0")]
    assert out[0].alert is not None and st.session == "life-2"


def test_records_without_a_session_are_not_dropped_by_a_restarting_seq() -> None:
    first = [scores(i, cats={"violence.gore": 0.05}) for i in range(10)]
    back = [
        scores(0, cats={"child_safety.csam": 0.95}, t0=5000.0).model_copy(
            update={"frame_id": "again-f0"}
        )
    ]
    _, out = run(first + back)
    assert [o.decision.action for o in out] == ["block"]


def test_a_new_life_starts_at_ok_with_an_empty_window_and_keeps_the_last_decision() -> None:
    blocked = [scores(i, cats={"violence.gore": 0.95}, session="a") for i in range(4)]
    st, out = run(blocked)
    assert st.state == "blocked" and len(out) == 1
    # the next life: one frame over the block threshold does not block (k of n restarts) ...
    nxt = [
        scores(i, cats={"violence.gore": 0.95}, t0=9000.0, session="b").model_copy(
            update={"frame_id": f"b-f{i}"}
        )
        for i in range(4)
    ]
    st2, out2 = run(nxt[:1], st)
    assert st2.state == "ok" and out2 == [] and st2.history["violence.gore"][0][2] == "b-f0"
    assert st2.decision_id == out[0].decision.decision_id  # still reviewable
    # ... and the new life's own violation is decided on its own frames
    st3, out3 = run(nxt[1:], st2)
    assert [o.decision.action for o in out3] == ["block"] and st3.state == "blocked"
    assert out3[0].decision.first_frame_id == "b-f0"


def test_replays_are_told_by_frame_id_within_the_window() -> None:
    frames = [scores(i, cats={"violence.gore": 0.95}) for i in range(4)]
    st = StreamState()
    for sc in frames:
        step(st, sc, POLICY, decided_at=0.0, replay_window=3)
    assert st.recent == ["s1-f1", "s1-f2", "s1-f3"]
    assert step(st, frames[3], POLICY, replay_window=3).decision is None


def test_two_tenants_same_stream_id_get_distinct_decision_and_incident_ids() -> None:
    red = {"child_safety.csam": 0.95}
    _, a = run([scores(0, "cam", cats=red, tenant="alpha")])
    _, b = run([scores(0, "cam", cats=red, tenant="beta")])
    assert a[0].decision.decision_id != b[0].decision.decision_id
    assert a[0].alert.incident_id != b[0].alert.incident_id
