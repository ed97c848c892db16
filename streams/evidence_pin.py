"""Pin a block/review decision's evidence and put the manifest's digest into the audit chain.

Kept apart from the worker's agents: one call per decision, after the decision is sent. The
scorer staged the frames already (framewatch/evidence.py), so the work here is a directory
listing, a few small reads and two small writes (benchmarks/console.py measures it). A store
that fails costs the evidence of that decision (counted, logged), never the decision.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter, Histogram

from framewatch.evidence import EvidenceStore
from framewatch.metrics import stage_registry
from framewatch.records import Decision, EvidencePinned, ReviewOutcome
from framewatch.settings import Settings
from streams.policy import Policy
from streams.processor import Out

log = logging.getLogger(__name__)
_REG = stage_registry("streams")
PIN_SECONDS = Histogram(
    "framewatch_evidence_pin_seconds",
    "time to pin a decision's evidence (added to the decision's path)",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1),
    registry=_REG,
)
PIN_ERRORS = Counter(
    "framewatch_evidence_pin_errors_total", "decisions whose evidence failed", registry=_REG
)


class Pinner:
    def __init__(self, settings: Settings) -> None:
        self.store = EvidenceStore.from_settings(settings) if settings.evidence.enabled else None

    def pin(self, d: Decision, policy: Policy) -> Out | None:
        """The audit record of the pin, or None (an allow, evidence off, or a store error)."""
        if self.store is None or d.action == "allow":
            return None
        t0 = time.perf_counter()
        thresholds: dict[str, float] = {}
        if d.reasons:
            rule = policy.rule(d.reasons[0].category, d.tenant, d.channel)
            thresholds = {"review": rule.review, "block": rule.block}
        try:
            pin = self.store.pin(d, thresholds)
        except Exception as exc:
            PIN_ERRORS.inc()
            log.error("evidence of decision %s not pinned: %s", d.decision_id, exc)
            return None
        PIN_SECONDS.observe(time.perf_counter() - t0)
        return _audited(d, pin)

    def hold(self, d: ReviewOutcome) -> Out | None:
        """An escalated decision's evidence goes under legal hold, as a red line's does; the
        audit record of the hold, or None (no pin, evidence off, holds off, a store error)."""
        if self.store is None or not self.store.cfg.legal_hold_red_lines:
            return None
        try:
            pin = self.store.hold(d.tenant, d.decision_id)
        except Exception as exc:
            PIN_ERRORS.inc()
            log.error("evidence of decision %s not put on hold: %s", d.decision_id, exc)
            return None
        return _audited(d, pin) if pin is not None else None


def _audited(d: Decision | ReviewOutcome, pin: dict) -> Out:  # type: ignore[type-arg]
    rec = EvidencePinned(
        decision_id=d.decision_id,
        account_id=d.account_id,
        tenant=d.tenant,
        manifest_sha256=pin["manifest"],
        legal_hold=pin["hold"],
        expires_at=pin["expires_at"],
        pinned_at=pin["pinned_at"],
    )
    return Out("audit_in", d.stream_id, rec)
