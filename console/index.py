"""What the console knows: decisions, verdicts and enforcement, read from their topics.

Pure and in memory: the tailer (console/tail.py) feeds it records in topic order. A review
decision is pending until a verdict on it arrives; an appeal (console/appeals.py) is pending
until it is decided. The queue orders by severity, then age (oldest first).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from framewatch.records import Decision, Enforcement, ReviewOutcome

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

    def sort_key(self) -> tuple[float, float]:
        return (-self.severity, self.created_at)


def _decision_key(d: Decision) -> tuple[int, float]:
    sev = SEVERITY["red_line"] if d.red_line else SEVERITY.get(d.action, 1)
    return (-sev, d.decided_at)


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
    # pending review decisions sorted for the queue, rebuilt only after a change
    _sorted: list[Decision] | None = None

    def add(self, rec: Any) -> None:
        if isinstance(rec, Decision):
            self.add_decision(rec)
        elif isinstance(rec, ReviewOutcome):
            self.add_review(rec)
        elif isinstance(rec, Enforcement):
            self.enforcement[(rec.tenant, rec.account_id)] = rec

    def add_decision(self, d: Decision) -> None:
        if d.decision_id in self.decisions:
            return  # a re-send after a worker restart
        self.decisions[d.decision_id] = d
        self.by_account[(d.tenant, d.account_id)].append(d.decision_id)
        if d.corrects:
            self.corrections[d.corrects] = d
        if d.action == "review" and d.decision_id not in self.verdicts:
            self.pending[d.decision_id] = d
            self._sorted = None

    def add_review(self, rv: ReviewOutcome) -> None:
        if any(v.review_id == rv.review_id for v in self.verdicts.get(rv.decision_id, [])):
            return
        self.verdicts[rv.decision_id].append(rv)
        self.reviews.append(rv)
        if self.pending.pop(rv.decision_id, None) is not None:
            self._sorted = None

    def queue(
        self,
        tenants: set[str] | None,
        sla_s: float,
        appeals: list[Item] = (),  # type: ignore[assignment]
        skip_sensitive: list[str] | None = None,
    ) -> list[Item]:
        """Pending items of these tenants (None: all), most severe first, then oldest.

        ``skip_sensitive`` (the categories) drops red-line and such items: the reviewer is at
        the hourly exposure cap.
        """
        if self._sorted is None:
            self._sorted = sorted(self.pending.values(), key=_decision_key)
        items = [
            Item("review", d.decision_id, d, d.decided_at, sla_s)
            for d in self._sorted
            if (tenants is None or d.tenant in tenants)
            and (skip_sensitive is None or not is_sensitive(d, skip_sensitive))
        ]
        extra = [
            a
            for a in appeals
            if (tenants is None or a.tenant in tenants)
            and (skip_sensitive is None or not is_sensitive(a.decision, skip_sensitive))
        ]
        if extra:  # few: merge them in
            items = sorted(items + extra, key=Item.sort_key)
        return items

    def history(self, tenant: str, account_id: str) -> dict[str, Any]:
        """The account's decisions (newest first), verdicts on them and its ladder step."""
        rows = []
        for did in reversed(self.by_account.get((tenant, account_id), [])):
            d = self.decisions[did]
            rows.append({"decision": d, "verdicts": list(self.verdicts.get(did, []))})
        enf = self.enforcement.get((tenant, account_id))
        strikes = sum(1 for r in rows if r["decision"].action == "block")
        return {"decisions": rows, "enforcement": enf, "blocks": strikes}
