"""The streams worker's running policy: hot reload that keeps the old policy on a bad file.

The policy engine itself (files, rules, evaluation) is core, in :mod:`framewatch.policy`, because
the check API decides with it too; its names are re-exported here for the stage's modules.
"""

from __future__ import annotations

import logging
from pathlib import Path

from prometheus_client import Counter, Gauge

from framewatch.metrics import stage_registry
from framewatch.policy import (
    DEFAULT_POLICY,
    MAX_HISTORY,
    Enforcement,
    HashHit,
    LadderStep,
    Policy,
    PolicyError,
    PolicyFile,
    Rule,
    Smoothing,
    Verdict,
    check_file,
    evaluate,
    explain,
    load_dir,
    parse_file,
)
from framewatch.taxonomy import Taxonomy

__all__ = [
    "DEFAULT_POLICY",
    "MAX_HISTORY",
    "Enforcement",
    "HashHit",
    "LadderStep",
    "Policy",
    "PolicyError",
    "PolicyFile",
    "PolicyStore",
    "Rule",
    "Smoothing",
    "Verdict",
    "check_file",
    "evaluate",
    "explain",
    "load_dir",
    "parse_file",
]
_REG = stage_registry("streams")  # this stage's /metrics only (core metrics join there)

log = logging.getLogger(__name__)
POLICY_OK = Gauge(
    "framewatch_streams_policy_ok",
    "0 while the policy files on disk are refused (old one runs)",
    registry=_REG,
)
POLICY_REFUSED = Counter(
    "framewatch_streams_policy_refused_total", "policy reloads refused as invalid", registry=_REG
)
POLICY_OK.set(1)


class PolicyStore:
    """Holds the running policy; ``maybe_reload`` swaps in a new one only if it validates."""

    def __init__(self, policy_dir: Path | None, taxonomy: Taxonomy, shadow: bool = False) -> None:
        self.policy_dir, self.taxonomy = policy_dir, taxonomy
        self.shadow = shadow  # a shadow set's refusals are logged, not the live policy's gauge
        self.policy = load_dir(policy_dir, taxonomy)
        self._stamp = self._fingerprint()
        self.last_error: PolicyError | None = None

    def _fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        d = Path(self.policy_dir) if self.policy_dir else None
        if d is None or not d.is_dir():
            return ()
        return tuple(
            (p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(d.glob("*.yaml"))
        )

    def maybe_reload(self) -> bool:
        """Reload if files changed; on error keep the running policy. True if it changed."""
        stamp = self._fingerprint()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            new = load_dir(self.policy_dir, self.taxonomy)
        except Exception as exc:  # any error at all: the running policy must stay in force
            if not isinstance(exc, PolicyError):
                exc = PolicyError(str(self.policy_dir), None, f"{type(exc).__name__}: {exc}")
            self.last_error = exc
            if not self.shadow:
                POLICY_REFUSED.inc()
                POLICY_OK.set(0)
            log.error("%spolicy refused, keeping %s: %s", "shadow " * self.shadow,
                      self.policy.version, exc)  # fmt: skip
            return False
        self.last_error = None
        if not self.shadow:
            POLICY_OK.set(1)
        changed = new.version != self.policy.version
        if changed:
            log.info("policy %s -> %s", self.policy.version, new.version)
        self.policy = new
        return changed
