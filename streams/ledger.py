"""Account strike ledger: strikes with half-life decay, window counts, the enforcement ladder.

Pure: ``apply(ledger, decision, policy)`` adds the decision's strike (once: a replayed decision id
is ignored) and returns an Enforcement only when the account moves to another ladder step. Time
is the decision's capture time, so a replay after a crash yields the same records and ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from framewatch import records, scope
from framewatch.records import Decision, Enforcement
from streams.policy import Policy

WINDOWS = {"1h": 3600.0, "24h": 86400.0, "30d": 30 * 86400.0}


@dataclass(frozen=True)
class Keep:
    """How much of an account's past its ledger row keeps (settings.streams.ledger_*)."""

    seen: int
    strike_days: float
    history: int


@dataclass
class Ledger:
    """One account's history: strikes, the decision ids already counted, the ladder step.

    An account belongs to a tenant: the ledger table is keyed by ``scope.key(tenant,
    account_id)``, so two tenants' ``acct-42`` are two ledgers."""

    account_id: str
    tenant: str = "default"
    strikes: list[dict[str, Any]] = field(default_factory=list)  # decision_id, category, weight, at
    seen: list[str] = field(default_factory=list)
    step: int = 0  # 0 = none, 1.. = index+1 into the ladder
    history: list[dict[str, Any]] = field(default_factory=list)  # enforcement summaries

    def to_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "tenant": self.tenant,
            "strikes": self.strikes,
            "seen": self.seen,
            "step": self.step,
            "history": self.history,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Ledger:
        return cls(**d)

    def totals(self, at: float, half_life_days: float) -> dict[str, float]:
        """Decayed strikes per category at time ``at``."""
        hl = half_life_days * 86400.0
        out: dict[str, float] = {}
        for s in self.strikes:
            w = s["weight"] * 0.5 ** (max(0.0, at - s["at"]) / hl)
            out[s["category"]] = round(out.get(s["category"], 0.0) + w, 6)
        return out

    def counts(self, at: float) -> dict[str, int]:
        """How many strikes fell in each window before ``at``."""
        return {
            k: sum(1 for s in self.strikes if 0 <= at - s["at"] <= w) for k, w in WINDOWS.items()
        }


def prune(led: Ledger, at: float, keep: Keep) -> None:
    """Bound the row: the newest decision ids and ladder steps, strikes younger than the
    horizon. Dropping an old strike can only lower a total, so it never steps an account up."""
    del led.seen[: -keep.seen]
    del led.history[: -keep.history]
    horizon = at - keep.strike_days * 86400.0
    led.strikes = [s for s in led.strikes if s["at"] >= horizon]


def _action(step: int, policy: Policy, tenant: str) -> str:
    ladder = policy.enforcement(tenant).ladder
    return ladder[step - 1].action if step else "none"


def _step_for(total: float, policy: Policy, tenant: str) -> int:
    step = 0
    for i, s in enumerate(policy.enforcement(tenant).ladder, start=1):
        if total >= s.strikes:
            step = i
    return step


def apply(
    led: Ledger, d: Decision, policy: Policy, issued_at: float | None = None
) -> Enforcement | None:
    """Count a block decision's strike once; an Enforcement if the ladder step changed."""
    if d.action != "block" or d.decision_id in led.seen or not d.reasons:
        return None
    led.seen.append(d.decision_id)
    top = max(
        d.reasons,
        key=lambda r: (
            policy.rule(r.category, d.tenant, d.channel).strike_weight
            if r.category in policy.taxonomy
            else 0.0,
            r.score,
        ),
    )
    weight = (
        policy.rule(top.category, d.tenant, d.channel).strike_weight
        if top.category in policy.taxonomy
        else 1.0
    )
    led.strikes.append(
        {
            "decision_id": d.decision_id,
            "category": top.category,
            "weight": weight,
            "at": d.captured_at,
        }
    )
    return _restep(led, policy, d.captured_at, [d.decision_id], issued_at)


def remove(
    led: Ledger, decision_id: str, policy: Policy, at: float, issued_at: float | None = None
) -> Enforcement | None:
    """An overturned decision: drop its strike; an Enforcement (reversal) if the step fell.

    The id is also marked seen, so the decision arriving late (a replay that reorders it after
    its review) never counts; removing twice finds no strike and returns None.
    """
    if decision_id not in led.seen:
        led.seen.append(decision_id)
    before = len(led.strikes)
    led.strikes = [s for s in led.strikes if s["decision_id"] != decision_id]
    if len(led.strikes) == before:
        return None
    return _restep(led, policy, at, [decision_id], issued_at, reversal=True)


def _restep(
    led: Ledger,
    policy: Policy,
    at: float,
    ids: list[str],
    issued_at: float | None,
    reversal: bool = False,
) -> Enforcement | None:
    enf = policy.enforcement(led.tenant)
    totals = led.totals(at, enf.half_life_days)
    total = round(sum(totals.values()), 6)
    new = _step_for(total, policy, led.tenant)
    if new == led.step or (new < led.step and not reversal):
        return None  # decay alone never steps an account down; only a review does
    prev = _action(led.step, policy, led.tenant)
    action = _action(new, policy, led.tenant)
    eid = records.stable_id(scope.key(led.tenant, led.account_id), action, new, *ids)
    last = led.history[-1]["enforcement_id"] if led.history else None
    led.step = new
    led.history.append({"enforcement_id": eid, "action": action, "at": at, "decision_ids": ids})
    return Enforcement(
        enforcement_id=eid,
        account_id=led.account_id,
        tenant=led.tenant,
        action=action,  # type: ignore[arg-type]
        previous_action=prev,  # type: ignore[arg-type]
        ladder_step=new,
        strikes=totals,
        strike_total=total,
        decision_ids=ids,
        policy_version=policy.version,
        issued_at=issued_at if issued_at is not None else records.now(),
        reverses=last if reversal else None,
    )
