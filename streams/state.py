"""Per-stream state machine: ok / review / blocked, emitting only transitions.

Pure: ``step(state, scores, policy, settings)`` returns the new state plus at most one Decision
(and an Alert for red lines). The state is a plain dict so a Faust table can store it as JSON.
Time is the frames' capture time, never the wall clock, so a replay gives the same decisions
with the same ids (``stable_id(tenant/stream, transition, first frame)``).

Replays are recognised by what they are: a frame id among the stream's last ``replay_window``
frame ids (a scorer or worker replaying after a crash sends the same frame ids again). Never by
``seq``: ingest restarts, supervisor restarts and publisher reconnects start counters again.

A new ``session`` on a frame is a new life of the stream (the publisher came back under the same
id, or a file was ingested again): the state machine starts again at ``ok`` with an empty
smoothing window, so the new life is moderated on its own frames and its own first violation is
decided, paged and struck like any other. The account's strikes (the ledger) carry over: they
are the account's record, not the stream's. The last decision stays reviewable: a verdict on it
still clears or corrects it while the new life has made no decision of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from framewatch import combine, records, scope
from framewatch.records import Alert, Decision, Reason, Scores
from streams.policy import MAX_HISTORY, Policy, Rule


@dataclass
class StreamState:
    """What one stream's worker remembers between frames."""

    state: str = "ok"  # ok | review | blocked
    last_flag_at: float | None = None  # capture time of the last frame over a review threshold
    # category -> [[captured_at, score, frame_id], ...] newest last, at most MAX_HISTORY
    history: dict[str, list[list[Any]]] = field(default_factory=dict)
    recent: list[str] = field(default_factory=list)  # frame ids seen, newest last (replays)
    session: str | None = None  # the life of the stream its frames belong to
    decision_id: str | None = None  # the decision that put it in its current state
    # what a review of that decision needs: action, top reason, first frame, capture time
    decided: dict[str, Any] | None = None
    reviews: list[str] = field(default_factory=list)  # review ids applied, newest last
    # the last frames' values of the signals combined rules read (within N frames), newest last
    signals: list[dict[str, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "last_flag_at": self.last_flag_at,
            "history": self.history,
            "recent": self.recent,
            "session": self.session,
            "decision_id": self.decision_id,
            "decided": self.decided,
            "reviews": self.reviews,
            "signals": self.signals,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> StreamState:
        if not d:
            return cls()
        d = dict(d)
        d.pop("last_seq", None)  # state written before replays were told by frame id
        return cls(**d)


@dataclass(frozen=True)
class Outcome:
    state: StreamState
    decision: Decision | None = None
    alert: Alert | None = None


def _trim(hist: list[list[Any]], rule: Rule) -> None:
    """Keep only the frames the rule can still look at: the table writes the whole state to
    its changelog on every frame, so a short history is what keeps the worker fast.

    k of n needs the last n frames; held-for-t needs the newest run over the review threshold
    (a frame under it ends every run), or just the newest frame when that one is under it.
    """
    sm = rule.smoothing
    if sm.hold_s is None:
        keep = sm.n
    else:
        keep = 0
        for h in reversed(hist):
            if h[1] < rule.review:
                break
            keep += 1
    del hist[: -max(1, min(keep, MAX_HISTORY))]


def _fires(hist: list[list[Any]], threshold: float, rule: Rule) -> tuple[bool, list[list[Any]]]:
    """Whether the smoothing condition holds at the newest frame, and the frames over threshold."""
    sm = rule.smoothing
    if sm.hold_s is not None:
        run: list[list[Any]] = []
        for h in reversed(hist):
            if h[1] < threshold:
                break
            run.append(h)
        run.reverse()
        ok = bool(run) and run[-1][0] - run[0][0] >= sm.hold_s
        return ok, run
    window = hist[-sm.n :]
    over = [h for h in window if h[1] >= threshold]
    return len(over) >= sm.k and hist[-1][1] >= threshold, over


def _reason(
    cat: str,
    rule: Rule,
    threshold: float,
    over: list[list[Any]],
    hist: list[list[Any]],
    source: str = "model",
) -> Reason:
    n = len(hist[-rule.smoothing.n :]) if rule.smoothing.hold_s is None else len(over)
    return Reason(
        category=cat,
        score=max(h[1] for h in over) if over else 0.0,
        threshold=threshold,
        frames_seen=len(over),
        frames_window=max(n, len(over)),
        rule=rule.source,
        source=source,  # type: ignore[arg-type]
    )


def step(
    st: StreamState,
    sc: Scores,
    policy: Policy,
    *,
    runbook_url: str | None = None,
    decided_at: float | None = None,
    replay_window: int = 64,
) -> Outcome:
    """Feed one scores record; return the new state and the transition it causes, if any."""
    if sc.frame_id in st.recent:
        return Outcome(st)  # a replayed frame: already counted
    st.recent.append(sc.frame_id)
    del st.recent[:-replay_window]
    if sc.session is not None and sc.session != st.session:
        if st.session is not None:
            new_life(st)
        st.session = sc.session
    t = sc.captured_at
    scores: dict[str, float] = sc.scores
    derived: dict[str, combine.Derived] = {}
    combos = policy.combined(sc.tenant, sc.channel)
    if combos:
        now = combine.signals(combos, scores)
        held = combine.derive(combos, scores, st.signals, now) if now or any(st.signals) else []
        derived = {d.rule.then: d for d in reversed(held)}
        keep = max((c.within for c in combos if c.enabled), default=1) - 1
        if keep:
            st.signals.append(now)
            del st.signals[: max(0, len(st.signals) - keep)]
        if derived:
            scores = combine.apply(scores, derived.values())
    if st.signals and not combos:
        st.signals = []
    rules: dict[str, Rule] = {}
    for cat, score in scores.items():
        if cat not in policy.taxonomy:
            continue
        rule = policy.rule(cat, sc.tenant, sc.channel)
        if rule.at_most == "none":
            continue  # a signal: it only counts through combined rules
        if cat in derived and derived[cat].score >= score:  # the reason names the combination
            rule = replace(rule, source=derived[cat].rule.source)
        rules[cat] = rule
        h = st.history.setdefault(cat, [])
        h.append([t, float(score), sc.frame_id])
        _trim(h, rule)
    if st.state == "blocked":
        return Outcome(st)

    red: list[Reason] = []
    block: list[Reason] = []
    review: list[Reason] = []
    evidence: set[str] = set()
    flagged = False
    for m in sc.hash_matches:
        rule = (
            policy.rule(m.category, sc.tenant, sc.channel)
            if m.category in policy.taxonomy
            else None
        )
        r = Reason(
            category=m.category,
            score=1.0,
            threshold=1.0,
            frames_seen=1,
            frames_window=1,
            rule=f"hash_bank:{m.bank}:{m.entry_id}",
            source="hash_bank",
        )
        if m.role == "red_line" or (rule is not None and rule.red_line):
            red.append(r)
        else:
            review.append(r)
        evidence.add(sc.frame_id)
        flagged = True
    for cat, rule in rules.items():
        hist = st.history[cat]
        score = hist[-1][1]
        if score >= rule.review:
            flagged = True
        can_block = rule.at_most == "block"
        if can_block and rule.red_line and score >= rule.block:
            red.append(_reason(cat, rule, rule.block, [hist[-1]], [hist[-1]]))
            evidence.add(sc.frame_id)
            continue
        ok, over = _fires(hist, rule.block, rule) if can_block else (False, [])
        if ok:
            block.append(_reason(cat, rule, rule.block, over, hist))
            evidence.update(h[2] for h in over)
            continue
        ok, over = _fires(hist, rule.review, rule)
        if ok:
            review.append(_reason(cat, rule, rule.review, over, hist))
            evidence.update(h[2] for h in over)
    if flagged:
        st.last_flag_at = t

    action: str | None = None
    reasons: list[Reason] = []
    if red:
        action, reasons = "block", red
    elif block:
        action, reasons = "block", block
    elif review and st.state == "ok":
        action, reasons = "review", review
    elif (
        st.state == "review"
        and not flagged
        and st.last_flag_at is not None
        and t - st.last_flag_at >= policy.quiet_period_s(sc.tenant, sc.channel)
    ):
        action = "allow"
        evidence = {sc.frame_id}
    if action is None:
        return Outcome(st)

    frames = _ordered(st, evidence) or [sc.frame_id]
    first = frames[0]
    skey = scope.stream(sc)
    decision = Decision(
        decision_id=records.stable_id(skey, action, first),
        stream_id=sc.stream_id,
        account_id=sc.account_id,
        tenant=sc.tenant,
        channel=sc.channel,
        action=action,  # type: ignore[arg-type]
        previous_state=st.state,  # type: ignore[arg-type]
        reasons=sorted(reasons, key=lambda r: (-r.score, r.category)),
        red_line=bool(red),
        policy_version=policy.version,
        evidence_frame_ids=frames,
        first_frame_id=first,
        captured_at=t,
        decided_at=decided_at if decided_at is not None else records.now(),
    )
    st.state = {"block": "blocked", "review": "review", "allow": "ok"}[action]
    st.decision_id = decision.decision_id
    st.decided = _summary(decision)
    alert = None
    if red:
        top = decision.reasons[0]
        alert = Alert(
            incident_id=incident_id(skey, first),
            severity="critical",
            category=top.category,
            red_line=True,
            stream_id=sc.stream_id,
            account_id=sc.account_id,
            tenant=sc.tenant,
            decision_id=decision.decision_id,
            evidence_frame_ids=frames,
            summary=(
                f"red line {top.category} on stream {sc.stream_id} "
                f"({top.rule}, score {top.score:.2f} >= {top.threshold:.2f}); stream blocked"
            ),
            runbook_url=runbook_url,
            captured_at=t,
            raised_at=decision.decided_at,
        )
    return Outcome(st, decision, alert)


def quiet(st: StreamState, policy: Policy, tenant: str | None, channel: str | None) -> bool:
    """Nothing in the stream's windows that a rule could act on: state ok, every kept frame
    under its category's review threshold, every kept signal under each combined rule's
    minimum for it."""
    if st.state != "ok":
        return False
    if any(st.signals):
        least: dict[str, float] = {}
        for c in policy.combined(tenant, channel):
            for node, minimum in c.all if c.enabled else ():
                least[node] = min(least.get(node, 1.0), minimum)
        if any(v >= least.get(n, 2.0) for frame in st.signals for n, v in frame.items()):
            return False
    for cat, hist in st.history.items():
        review = policy.rule(cat, tenant, channel).review
        if any(h[1] >= review for h in hist):
            return False
    return True


def shape(st: StreamState) -> tuple[Any, ...]:
    """Everything of a state but its smoothing windows and replay ids."""
    return (st.state, st.last_flag_at, st.session, st.decision_id, st.decided, tuple(st.reviews))


def must_persist(
    before: tuple[Any, ...] | None,
    after: StreamState,
    decided: bool,
    policy: Policy,
    tenant: str | None,
    channel: str | None,
) -> bool:
    """Whether a step's new state must go to the table's changelog, or may stay in memory.

    ``before``: the old state's :func:`shape` when it was :func:`quiet`, else None. A quiet
    stream that stays quiet with the same shape changes only benign frames in its windows and
    its replay ids. By induction the last state written is then quiet with the same shape, so
    a worker that restores it after a crash or failover differs only in benign frames (never
    over a review threshold, so never counted by a rule) and counts benign replays again
    (harmless): its decisions and their ids are the same. A benign stream then costs no
    changelog write a frame. A policy reload that lowers a threshold under a kept benign score
    can make a restored window differ, as a replay across the reload could anyway.
    """
    if decided or before is None or shape(after) != before:
        return True
    return not quiet(after, policy, tenant, channel)


def incident_id(stream_key: str, first_frame_id: str) -> str:
    """The red-line incident of a block (``stream_key``: ``scope.stream``): its trigger and its
    resolve share this id."""
    return records.stable_id("incident", stream_key, first_frame_id)


def _ordered(st: StreamState, ids: set[str]) -> list[str]:
    """Evidence frame ids in capture order (the first is the decision's first frame)."""
    seen: dict[str, float] = {}
    for hist in st.history.values():
        for ts, _, fid in hist:
            if fid in ids:
                seen.setdefault(fid, ts)
    rest = sorted(ids - set(seen))
    return sorted(seen, key=lambda f: (seen[f], f)) + rest


def _summary(d: Decision) -> dict[str, Any]:
    top = d.reasons[0] if d.reasons else None
    return {
        "action": d.action,
        "category": top.category if top else None,
        "score": top.score if top else None,
        "threshold": top.threshold if top else None,
        "red_line": d.red_line,
        "channel": d.channel,
        "first_frame_id": d.first_frame_id,
        "captured_at": d.captured_at,
    }


def new_life(st: StreamState) -> None:
    """The stream came back under the same id: start again at ok with an empty smoothing
    window. The last decision (and the reviews applied) are kept so that it stays reviewable."""
    st.state = "ok"
    st.history = {}
    st.signals = []
    st.last_flag_at = None


def clear(st: StreamState) -> StreamState:
    """An overturned decision resets the stream to ok with no history (smoothing restarts)."""
    return StreamState(recent=list(st.recent), session=st.session, reviews=list(st.reviews))
