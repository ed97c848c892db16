"""What the console knows: decisions, verdicts and enforcement, read from their topics.

Pure and in memory: the tailer (console/tail.py) feeds it records in topic order. A review
decision is pending until a verdict on it arrives; an appeal (console/appeals.py) is pending
until it is decided. The queue orders by severity, then age (oldest first).
"""

from __future__ import annotations

import heapq
import itertools
from bisect import bisect_left, insort
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from framewatch.records import AccountForget, Decision, Enforcement, ReviewOutcome

SEVERITY = {"red_line": 3, "block": 2, "review": 1}


@dataclass(frozen=True)
class Item:
    """One entry of a reviewer's queue."""

    kind: str  # review | appeal
    item_id: str  # decision_id, or the appeal id
    decision: Decision
    created_at: float  # when it entered the queue (decided, or appealed)
    sla_s: float
    appeal: dict[str, Any] | None = None
    audience: int = 0  # the stream's viewers, as an order of magnitude (audience_bucket)

    @property
    def tenant(self) -> str:
        return self.decision.tenant

    @property
    def category(self) -> str | None:
        return self.decision.reasons[0].category if self.decision.reasons else None

    @property
    def score(self) -> float:
        return self.decision.reasons[0].score if self.decision.reasons else 1.0

    @property
    def severity(self) -> int:
        if self.decision.red_line:
            return SEVERITY["red_line"]
        return SEVERITY.get(self.decision.action, 1)

    def age(self, now: float) -> float:
        return max(0.0, now - self.created_at)

    def breached(self, now: float) -> bool:
        return self.age(now) > self.sla_s

    def sort_key(self) -> tuple[float, float, float]:
        return (-self.severity, -self.audience, self.created_at)


@dataclass(frozen=True)
class Page:
    items: list[Item]  # the requested slice
    total: int
    breached: int


def audience_bucket(viewers: int) -> int:
    """Viewers as an order of magnitude (0; 1-9; 10-99; ...): a bigger audience goes first
    within a severity, while streams of similar size keep the oldest-first order."""
    return len(str(viewers)) if viewers > 0 else 0


def _redact(rv: ReviewOutcome) -> ReviewOutcome:
    """A verdict of an erased account: the outcome stays (numbers, audit), the note goes."""
    return rv.model_copy(update={"note": None}) if rv.note else rv


def is_sensitive(d: Decision, categories: list[str]) -> bool:
    """Red lines and the categories counted as exposures (gore ...) for reviewer wellbeing."""
    if d.red_line:
        return True
    cats = [r.category for r in d.reasons]
    return any(c == s or c.startswith(s + ".") for c in cats for s in categories)


@dataclass
class Index:
    decisions: dict[str, Decision] = field(default_factory=dict)
    verdicts: dict[str, list[ReviewOutcome]] = field(default_factory=lambda: defaultdict(list))
    pending: dict[str, Decision] = field(default_factory=dict)  # review decisions, no verdict
    by_account: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    enforcement: dict[tuple[str, str], Enforcement] = field(default_factory=dict)
    corrections: dict[str, Decision] = field(default_factory=dict)  # corrected id -> the allow
    reviews: list[ReviewOutcome] = field(default_factory=list)
    tenants: set[str] = field(default_factory=set)
    forgotten: set[tuple[str, str]] = field(default_factory=set)  # (tenant, account) erased
    viewers: dict[tuple[str, str], int] = field(default_factory=dict)  # (tenant, stream) -> now
    # pending review decisions sorted for the queue, and per-reviewer views of them (items and
    # their sorted entry times, for the breach count); rebuilt only after the pending set changed
    _sorted: list[Decision] | None = None
    _views: dict[tuple[Any, ...], list[Decision]] = field(default_factory=dict)

    def add(self, rec: Any) -> None:
        if isinstance(rec, Decision):
            self.add_decision(rec)
        elif isinstance(rec, ReviewOutcome):
            self.add_review(rec)
        elif isinstance(rec, Enforcement):
            if (rec.tenant, rec.account_id) not in self.forgotten:
                self.enforcement[(rec.tenant, rec.account_id)] = rec
        elif isinstance(rec, AccountForget):
            self.forget(rec.tenant, rec.account_id)

    def audience(self, d: Decision) -> int:
        return audience_bucket(self.viewers.get((d.tenant, d.stream_id), 0))

    def _key(self, d: Decision) -> tuple[int, int, float]:
        """Queue order: severity, then audience size, then age (oldest first)."""
        sev = SEVERITY["red_line"] if d.red_line else SEVERITY.get(d.action, 1)
        return (-sev, -self.audience(d), d.decided_at)

    def set_viewers(self, counts: dict[tuple[str, str], int]) -> None:
        """The streams' current viewer counts (all of them: a stream left out has none now);
        the queue is re-sorted only when an audience bucket changed."""
        before = {k: audience_bucket(v) for k, v in self.viewers.items() if v > 0}
        self.viewers = dict(counts)
        if {k: audience_bucket(v) for k, v in counts.items() if v > 0} != before:
            self._sorted = None
            self._views.clear()

    def forget(self, tenant: str, account_id: str) -> list[str]:
        """An account was erased: drop the review notes on its decisions (now and when they
        are read later: topics are read in no order across partitions) and its ladder step.
        Returns its decision ids (the console drops their appeals)."""
        self.forgotten.add((tenant, account_id))
        self.enforcement.pop((tenant, account_id), None)
        ids = list(self.by_account.get((tenant, account_id), []))
        for did in ids:
            self.verdicts[did] = [_redact(v) for v in self.verdicts.get(did, [])]
        self.reviews = [_redact(v) if self._erased(v) else v for v in self.reviews]
        return ids

    def _erased(self, rv: ReviewOutcome) -> bool:
        return (rv.tenant, rv.account_id) in self.forgotten

    def add_decision(self, d: Decision) -> None:
        if d.decision_id in self.decisions:
            return  # a re-send after a worker restart
        self.decisions[d.decision_id] = d
        self.tenants.add(d.tenant)
        self.by_account[(d.tenant, d.account_id)].append(d.decision_id)
        if d.corrects:
            self.corrections[d.corrects] = d
        if d.action == "review" and d.decision_id not in self.verdicts:
            self.pending[d.decision_id] = d
            if self._sorted is not None:
                insort(self._sorted, d, key=self._key)
            self._views.clear()

    def add_review(self, rv: ReviewOutcome) -> None:
        if any(v.review_id == rv.review_id for v in self.verdicts.get(rv.decision_id, [])):
            return
        if self._erased(rv):
            rv = _redact(rv)
        self.verdicts[rv.decision_id].append(rv)
        self.reviews.append(rv)
        d = self.pending.pop(rv.decision_id, None)
        if d is not None:
            if self._sorted is not None:
                i = bisect_left(self._sorted, self._key(d), key=self._key)
                while self._sorted[i] is not d:
                    i += 1
                del self._sorted[i]
            self._views.clear()

    def queue(
        self,
        tenants: set[str] | None,
        sla_s: float,
        appeals: list[Item] = (),  # type: ignore[assignment]
        skip_sensitive: list[str] | None = None,
        start: int = 0,
        stop: int | None = None,
        now: float = 0.0,
    ) -> Page:
        """Pending items of these tenants (None: all), most severe first, then oldest; only
        ``[start:stop]`` become Items, so a page of a 10,000-item queue stays cheap.

        ``skip_sensitive`` (the categories) drops red-line and such items: the reviewer is at
        the hourly exposure cap. ``now`` counts the items past their SLA.
        """
        decisions = self._view(tenants, skip_sensitive)
        extra = sorted(
            (
                a
                for a in appeals
                if (tenants is None or a.tenant in tenants)
                and (skip_sensitive is None or not is_sensitive(a.decision, skip_sensitive))
            ),
            key=Item.sort_key,
        )
        reviews = (
            Item("review", d.decision_id, d, d.decided_at, sla_s, audience=self.audience(d))
            for d in decisions
        )
        merged = heapq.merge(reviews, extra, key=Item.sort_key)
        shown = list(itertools.islice(merged, start, stop))
        cutoff = now - sla_s
        breached = sum(1 for d in decisions if d.decided_at < cutoff)
        breached += sum(1 for a in extra if a.breached(now))
        return Page(shown, len(decisions) + len(extra), breached)

    def _view(self, tenants: set[str] | None, skip: list[str] | None) -> list[Decision]:
        """The sorted pending reviews a reviewer may be handed, cached until the set changes."""
        if self._sorted is None:
            self._sorted = sorted(self.pending.values(), key=self._key)
            self._views.clear()
        key = (
            None if tenants is None else frozenset(tenants),
            None if skip is None else tuple(skip),
        )
        view = self._views.get(key)
        if view is None:
            view = [
                d
                for d in self._sorted
                if (tenants is None or d.tenant in tenants)
                and (skip is None or not is_sensitive(d, skip))
            ]
            if len(self._views) >= 256:
                self._views.clear()
            self._views[key] = view
        return view

    def history(self, tenant: str, account_id: str) -> dict[str, Any]:
        """The account's decisions (newest first), verdicts on them and its ladder step."""
        rows = []
        for did in reversed(self.by_account.get((tenant, account_id), [])):
            d = self.decisions[did]
            rows.append({"decision": d, "verdicts": list(self.verdicts.get(did, []))})
        enf = self.enforcement.get((tenant, account_id))
        strikes = sum(1 for r in rows if r["decision"].action == "block")
        return {"decisions": rows, "enforcement": enf, "blocks": strikes}
