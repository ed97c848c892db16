"""What the Faust agents call: one record in -> new state + records out. No Faust, no I/O.

Keeping this apart lets the worker's agents stay a few lines (decode, call, send) and lets the
tests drive the exact logic the worker runs without a broker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from framewatch import scope, taxonomy
from framewatch.records import Decision, Enforcement, ReviewOutcome, Scores
from framewatch.settings import Settings
from streams import ledger as ledger_mod
from streams import review, statement
from streams.policy import PolicyStore
from streams.state import StreamState, must_persist, quiet, shape, step


@dataclass(frozen=True)
class Out:
    """A record to produce: topic key (settings.topics), message key, the record."""

    topic: str
    key: str
    record: Any


@dataclass
class Result:
    state: dict[str, Any] | None
    outputs: list[Out] = field(default_factory=list)
    hot: bool = False  # mark the stream hot in Redis (it went to review)
    persist: bool = True  # False: keep the state in memory, no changelog write (state.must_persist)


class Processor:
    """Holds the running policy (reloaded on change) and turns records into outputs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.taxonomy = taxonomy.load(settings.taxonomy_file)
        self.policies = PolicyStore(settings.streams.policy_dir, self.taxonomy)
        shadow = settings.streams.shadow_policy_dir
        self.shadow = PolicyStore(shadow, self.taxonomy, shadow=True) if shadow else None
        st = settings.streams
        self.keep = ledger_mod.Keep(
            st.ledger_seen_kept, st.ledger_strike_days, st.ledger_history_kept
        )
        self._next_check = 0.0

    def maybe_reload(self) -> None:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self.settings.streams.reload_interval_s
            self.policies.maybe_reload()
            if self.shadow is not None:
                self.shadow.maybe_reload()

    def on_scores_shadow(self, state: dict[str, Any] | None, sc: Scores) -> Result:
        """The shadow policy's state machine on the same record: its transition goes to the
        decisions_shadow topic only (no statement, alert, strike or hot mark)."""
        assert self.shadow is not None
        policy = self.shadow.policy
        st = StreamState.from_json(state)
        before = shape(st) if quiet(st, policy, sc.tenant, sc.channel) else None
        o = step(st, sc, policy, replay_window=self.settings.streams.replay_window)
        res = Result(o.state.to_json())
        res.persist = must_persist(
            before, o.state, o.decision is not None, policy, sc.tenant, sc.channel
        )
        if o.decision is not None:
            res.outputs.append(Out("decisions_shadow", scope.stream(o.decision), o.decision))
        return res

    def on_scores(self, state: dict[str, Any] | None, sc: Scores) -> Result:
        """Advance the stream's state machine; outputs are the transition and its alert."""
        self.maybe_reload()
        policy = self.policies.policy
        st = StreamState.from_json(state)
        before = shape(st) if quiet(st, policy, sc.tenant, sc.channel) else None
        o = step(
            st,
            sc,
            policy,
            runbook_url=self.settings.streams.runbook_url,
            replay_window=self.settings.streams.replay_window,
        )
        res = Result(o.state.to_json())
        res.persist = must_persist(
            before, o.state, o.decision is not None, policy, sc.tenant, sc.channel
        )
        if o.decision is None:
            return res
        d = o.decision
        if d.action == "block":
            d = d.model_copy(
                update={"statement": statement.for_decision(d, self.taxonomy, self.settings)}
            )
        res.outputs.append(Out("decisions", scope.stream(d), d))
        if o.alert is not None:
            res.outputs.append(Out("alerts", o.alert.incident_id, o.alert))
        res.hot = d.action == "review"
        return res

    def on_decision(
        self, led: dict[str, Any] | None, d: Decision
    ) -> tuple[dict[str, Any], list[Out]]:
        """Count a decision in its account's ledger; outputs are ladder steps only."""
        policy = self.policies.policy
        lg = ledger_mod.Ledger.from_json(led) if led else ledger_mod.Ledger(d.account_id, d.tenant)
        enf = ledger_mod.apply(lg, d, policy)
        ledger_mod.prune(lg, d.captured_at, self.keep)
        outs: list[Out] = []
        if enf is not None:
            enf = self._with_statement(enf, d)
            outs.append(Out("enforcement", scope.account(enf), enf))
        return lg.to_json(), outs

    def _with_statement(self, enf: Enforcement, d: Decision) -> Enforcement:
        cat = d.reasons[0].category if d.reasons else "known_bad"
        stm = statement.for_enforcement(
            enf, cat, self.taxonomy, self.settings, d.red_line, content_at=d.captured_at
        )
        return enf.model_copy(update={"statement": stm})


@dataclass
class ReviewResult:
    """A review applied to its stream: new state, records out, and what the agent reports."""

    state: dict[str, Any]
    outputs: list[Out] = field(default_factory=list)
    category: str | None = None
    duplicate: bool = False
    cleared: bool = False  # drop the stream's hot mark


class ReviewProcessor:
    """Review outcomes: stream side (reviews topic) and ledger side (re-keyed by account)."""

    def __init__(self, proc: Processor) -> None:
        self.proc = proc

    def on_review(self, state: dict[str, Any] | None, rv: ReviewOutcome) -> ReviewResult:
        """Apply a verdict to a stream; outputs: the clearing allow (with its corrected
        statement when a block was overturned) or an escalation's red-line block and page, the
        review re-keyed for the ledger, and the review itself for the audit trail."""
        p = self.proc
        p.maybe_reload()
        r = review.on_stream(
            StreamState.from_json(state),
            rv,
            p.policies.policy.version,
            keep=p.settings.streams.review_ids_kept,
        )
        res = ReviewResult(
            r.state.to_json(), category=r.category, duplicate=r.duplicate, cleared=r.cleared
        )
        if r.decision is not None:
            d = r.decision
            if d.action == "block":  # an escalation: a red-line block's own statement
                stm = statement.for_decision(d, p.taxonomy, p.settings)
                d = d.model_copy(update={"statement": stm})
            elif r.original_action == "block":
                stm = statement.for_correction(
                    d,
                    rv.decision_id,
                    r.category or "known_bad",
                    rv.note,
                    p.taxonomy,
                    p.settings,
                )
                d = d.model_copy(update={"statement": stm})
            res.outputs.append(Out("decisions", scope.stream(d), d))
        if r.alert is not None:
            res.outputs.append(Out("alerts", r.alert.incident_id, r.alert))
        if r.forward:
            res.outputs.append(Out("reviews_by_account", scope.account(rv), rv))
        res.outputs.append(Out("audit_in", scope.stream(rv), rv))
        return res

    def on_ledger(
        self, led: dict[str, Any] | None, rv: ReviewOutcome
    ) -> tuple[dict[str, Any], list[Out]]:
        """Remove an overturned decision's strike; outputs a reversal only if the step fell."""
        p = self.proc
        lg = (
            ledger_mod.Ledger.from_json(led) if led else ledger_mod.Ledger(rv.account_id, rv.tenant)
        )
        # the overturned content's capture time, read before its strike is removed
        at = next((s["at"] for s in lg.strikes if s["decision_id"] == rv.decision_id), None)
        enf, cat = review.on_ledger(lg, rv, p.policies.policy)
        ledger_mod.prune(lg, rv.resolved_at, p.keep)
        outs: list[Out] = []
        if enf is not None:
            stm = statement.for_reversal(
                enf,
                cat or "known_bad",
                rv.decision_id,
                p.taxonomy,
                p.settings,
                content_at=at if at is not None else rv.resolved_at,
            )
            enf = enf.model_copy(update={"statement": stm})
            outs.append(Out("enforcement", scope.account(enf), enf))
        return lg.to_json(), outs
