"""Policy engine: YAML policy files -> the rule that applies to a category, tenant and channel.

Pure Python (no Kafka, no Faust) so it is unit-tested directly. A policy set is every ``*.yaml``
in ``settings.streams.policy_dir`` (or the shipped default). Each file has a ``scope`` (``{}``,
``{tenant: x}``, ``{channel: kids}`` or both) and ``rules`` per taxonomy node. Specificity:
scope first (tenant+channel > tenant > channel > default), then the deeper node; fields a rule
leaves out come from the next less specific rule, then ``defaults``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import Counter, Gauge

from framewatch.errors import FramewatchError, TaxonomyError
from framewatch.metrics import stage_registry
from framewatch.taxonomy import Taxonomy

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

DEFAULT_POLICY = Path(__file__).parent / "policies" / "default.yaml"
LADDER_ACTIONS = ("warn", "restrict", "suspend_stream", "suspend_account")
_RULE_KEYS = {"review", "block", "smoothing", "red_line", "strike_weight"}
_FILE_KEYS = {"scope", "defaults", "rules", "enforcement", "quiet_period_s"}


class PolicyError(FramewatchError):
    """A policy file is invalid; the message names the file, the line and the reason."""

    def __init__(self, file: str, line: int | None, reason: str) -> None:
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {reason} (fix the file; the running policy stays in force)")
        self.file, self.line, self.reason = file, line, reason


@dataclass(frozen=True)
class Smoothing:
    """k of the last n frames over the threshold, or over it continuously for hold_s seconds."""

    k: int = 1
    n: int = 1
    hold_s: float | None = None

    def describe(self) -> str:
        return f"held {self.hold_s:g}s" if self.hold_s is not None else f"{self.k} of {self.n}"


@dataclass(frozen=True)
class Rule:
    """The effective rule for one category in one scope."""

    category: str
    review: float
    block: float
    smoothing: Smoothing
    red_line: bool
    strike_weight: float
    source: str = "defaults"  # e.g. 'default.yaml:sexual.explicit'


@dataclass(frozen=True)
class LadderStep:
    action: str
    strikes: float


@dataclass(frozen=True)
class Enforcement:
    half_life_days: float = 30.0
    ladder: tuple[LadderStep, ...] = ()


@dataclass(frozen=True)
class PolicyFile:
    name: str
    tenant: str | None
    channel: str | None
    defaults: dict[str, Any]
    rules: dict[str, dict[str, Any]]
    enforcement: Enforcement | None
    quiet_period_s: float | None

    @property
    def rank(self) -> int:
        return (2 if self.tenant else 0) + (1 if self.channel else 0)

    def applies(self, tenant: str | None, channel: str | None) -> bool:
        return (self.tenant is None or self.tenant == tenant) and (
            self.channel is None or self.channel == channel
        )


@dataclass
class Policy:
    """A validated set of policy files; ``version`` is the hash of their content."""

    files: list[PolicyFile]
    taxonomy: Taxonomy
    version: str
    _cache: dict[tuple[str, str | None, str | None], Rule] = field(default_factory=dict)

    def _applicable(self, tenant: str | None, channel: str | None) -> list[PolicyFile]:
        return sorted((f for f in self.files if f.applies(tenant, channel)), key=lambda f: f.rank)

    def rule(self, category: str, tenant: str | None = None, channel: str | None = None) -> Rule:
        """The effective rule for a category (most specific wins, gaps filled from less)."""
        ck = (category, tenant, channel)
        if ck in self._cache:
            return self._cache[ck]
        merged: dict[str, Any] = {"review": 0.6, "block": 0.9, "strike_weight": 1.0}
        merged["smoothing"] = {"k": 1, "n": 1}
        source = "built-in"
        files = self._applicable(tenant, channel)
        for f in files:
            merged.update(f.defaults)
        chain = list(reversed(self.taxonomy.ancestors(category)))  # root first
        for f in files:
            for node in chain:
                if node in f.rules:
                    merged.update(f.rules[node])
                    source = f"{f.name}:{node}"
        red = bool(merged.get("red_line", False)) or self.taxonomy.is_red_line(category)
        r = Rule(
            category=category,
            review=float(merged["review"]),
            block=float(merged["block"]),
            smoothing=Smoothing(**merged["smoothing"]),
            red_line=red,
            strike_weight=float(merged["strike_weight"]),
            source=source,
        )
        self._cache[ck] = r
        return r

    def enforcement(self, tenant: str | None = None) -> Enforcement:
        out = Enforcement()
        for f in self._applicable(tenant, None):
            if f.enforcement is not None:
                out = f.enforcement
        return out

    def quiet_period_s(self, tenant: str | None = None, channel: str | None = None) -> float:
        out = 60.0
        for f in self._applicable(tenant, channel):
            if f.quiet_period_s is not None:
                out = f.quiet_period_s
        return out


# ---------------------------------------------------------------------------------------------
# parsing


def _line_index(node: yaml.Node, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """Map each mapping-key path to its 1-based line, so errors can point at it."""
    out: dict[tuple[str, ...], int] = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            kp = (*path, str(k.value))
            out.update(_line_index(v, kp))
            out[kp] = k.start_mark.line + 1
    return out


def parse_file(name: str, text: str, taxonomy: Taxonomy) -> PolicyFile:
    """Validate one policy file; raises PolicyError(file, line, reason)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise PolicyError(name, line, f"bad YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(name, 1, "a policy file is a mapping (scope, defaults, rules, ...)")
    lines = _line_index(node) if node is not None else {}

    def fail(path: tuple[str, ...], reason: str) -> PolicyError:
        return PolicyError(name, lines.get(path) or lines.get(path[:-1]), reason)

    for k in data:
        if k not in _FILE_KEYS:
            raise fail((str(k),), f"unknown key {k!r}; expected one of {sorted(_FILE_KEYS)}")
    scope = data.get("scope") or {}
    if not isinstance(scope, dict) or set(scope) - {"tenant", "channel"}:
        raise fail(("scope",), "scope is a mapping with optional 'tenant' and 'channel'")
    defaults = _rule_fields(data.get("defaults") or {}, ("defaults",), fail)
    rules: dict[str, dict[str, Any]] = {}
    raw_rules = data.get("rules") or {}
    if not isinstance(raw_rules, dict):
        raise fail(("rules",), "rules is a mapping of taxonomy category -> rule")
    for cat, body in raw_rules.items():
        p = ("rules", str(cat))
        try:
            taxonomy.validate(str(cat))
        except TaxonomyError as exc:
            raise fail(p, str(exc)) from None
        fields = _rule_fields(body or {}, p, fail)
        if fields.get("red_line") is False and taxonomy.is_red_line(str(cat)):
            raise fail(p, f"{cat} is a red line in the taxonomy; a policy cannot relax it")
        rules[str(cat)] = fields
    # block >= review must hold for every effective combination within this file
    for cat, fields in rules.items():
        if "review" not in fields or "block" not in fields:
            continue  # checked on the merged rule in load_dir
        rv, bl = fields["review"], fields["block"]
        if bl < rv:
            raise fail(("rules", cat), f"{cat}: block threshold {bl} is below review {rv}")
    if defaults.get("block", 0.9) < defaults.get("review", 0.6):
        raise fail(("defaults",), "defaults: block threshold is below review")
    enf = _enforcement(data.get("enforcement"), fail)
    quiet = data.get("quiet_period_s")
    if quiet is not None and (not isinstance(quiet, int | float) or quiet < 0):
        raise fail(("quiet_period_s",), "quiet_period_s is a number of seconds >= 0")
    return PolicyFile(
        name=name,
        tenant=scope.get("tenant"),
        channel=scope.get("channel"),
        defaults=defaults,
        rules=rules,
        enforcement=enf,
        quiet_period_s=float(quiet) if quiet is not None else None,
    )


def _rule_fields(body: Any, path: tuple[str, ...], fail: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise fail(path, "a rule is a mapping of review/block/smoothing/red_line/strike_weight")
    out: dict[str, Any] = {}
    for k, v in body.items():
        p = (*path, str(k))
        if k not in _RULE_KEYS:
            raise fail(p, f"unknown rule field {k!r}; expected one of {sorted(_RULE_KEYS)}")
        if k in ("review", "block"):
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
                raise fail(p, f"{k} is a score threshold between 0 and 1, got {v!r}")
            out[k] = float(v)
        elif k == "strike_weight":
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise fail(p, f"strike_weight is a number >= 0, got {v!r}")
            out[k] = float(v)
        elif k == "red_line":
            if not isinstance(v, bool):
                raise fail(p, f"red_line is true or false, got {v!r}")
            out[k] = v
        else:
            out[k] = _smoothing(v, p, fail)
    return out


def _smoothing(v: Any, p: tuple[str, ...], fail: Any) -> dict[str, Any]:
    if isinstance(v, dict) and set(v) == {"hold_s"}:
        if not isinstance(v["hold_s"], int | float) or v["hold_s"] < 0:
            raise fail(p, "smoothing.hold_s is seconds >= 0")
        return {"hold_s": float(v["hold_s"])}
    if isinstance(v, dict) and set(v) == {"k", "n"}:
        k, n = v["k"], v["n"]
        if not (isinstance(k, int) and isinstance(n, int) and 1 <= k <= n <= 64):
            raise fail(p, f"smoothing needs integers 1 <= k <= n <= 64, got k={k!r} n={n!r}")
        return {"k": k, "n": n}
    raise fail(p, "smoothing is {k: K, n: N} (k of the last n frames) or {hold_s: SECONDS}")


def _enforcement(v: Any, fail: Any) -> Enforcement | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise fail(("enforcement",), "enforcement is a mapping with half_life_days and ladder")
    hl = v.get("half_life_days", 30)
    if not isinstance(hl, int | float) or hl <= 0:
        raise fail(("enforcement", "half_life_days"), "half_life_days is a number > 0")
    steps: list[LadderStep] = []
    for i, s in enumerate(v.get("ladder") or []):
        if not isinstance(s, dict) or s.get("action") not in LADDER_ACTIONS:
            raise fail(
                ("enforcement", "ladder"), f"ladder step {i}: action one of {LADDER_ACTIONS}"
            )
        st = s.get("strikes")
        if not isinstance(st, int | float) or st <= 0:
            raise fail(("enforcement", "ladder"), f"ladder step {i}: strikes is a number > 0")
        if steps and st <= steps[-1].strikes:
            raise fail(("enforcement", "ladder"), f"ladder step {i}: strikes must increase")
        steps.append(LadderStep(s["action"], float(st)))
    return Enforcement(half_life_days=float(hl), ladder=tuple(steps))


def load_dir(policy_dir: Path | None, taxonomy: Taxonomy) -> Policy:
    """Read and validate every policy file; the shipped default fills in when none is a default."""
    paths = (
        sorted(Path(policy_dir).glob("*.yaml")) if policy_dir and Path(policy_dir).is_dir() else []
    )
    texts = [(p.name, p.read_text(encoding="utf-8")) for p in paths]
    files = [parse_file(str(Path(policy_dir or ".") / n), t, taxonomy) for n, t in texts]
    if not any(f.rank == 0 for f in files):
        text = DEFAULT_POLICY.read_text(encoding="utf-8")
        texts.insert(0, ("<shipped default.yaml>", text))
        files.insert(0, parse_file("default.yaml", text, taxonomy))
    _check_effective(files, taxonomy)
    digest = hashlib.sha256()
    for n, t in texts:
        digest.update(n.encode() + b"\0" + t.encode() + b"\0")
    return Policy(files=files, taxonomy=taxonomy, version="p-" + digest.hexdigest()[:12])


class PolicyStore:
    """Holds the running policy; ``maybe_reload`` swaps in a new one only if it validates."""

    def __init__(self, policy_dir: Path | None, taxonomy: Taxonomy) -> None:
        self.policy_dir, self.taxonomy = policy_dir, taxonomy
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
        except PolicyError as exc:
            self.last_error = exc
            POLICY_REFUSED.inc()
            POLICY_OK.set(0)
            log.error("policy refused, keeping %s: %s", self.policy.version, exc)
            return False
        self.last_error = None
        POLICY_OK.set(1)
        changed = new.version != self.policy.version
        if changed:
            log.info("policy %s -> %s", self.policy.version, new.version)
        self.policy = new
        return changed


def explain(
    policy: Policy, scores: dict[str, float], tenant: str | None = None, channel: str | None = None
) -> list[dict[str, Any]]:
    """Which rule applies to each scored category, and what one frame of it would do."""
    out: list[dict[str, Any]] = []
    for cat, score in sorted(scores.items(), key=lambda kv: -kv[1]):
        try:
            r = policy.rule(cat, tenant, channel)
        except TaxonomyError as exc:
            out.append({"category": cat, "score": score, "verdict": "unknown", "why": str(exc)})
            continue
        sm = r.smoothing.describe()
        if r.red_line and score >= r.block:
            verdict, why = "block", f"red line: {score:.2f} >= {r.block:.2f} blocks on this frame"
        elif score >= r.block:
            verdict, why = "block", f"{score:.2f} >= block {r.block:.2f}; blocks when {sm} frames"
        elif score >= r.review:
            verdict, why = (
                "review",
                f"{score:.2f} >= review {r.review:.2f}; review when {sm} frames",
            )
        else:
            verdict, why = "none", f"{score:.2f} below review {r.review:.2f}"
        out.append(
            {
                "category": cat,
                "score": score,
                "verdict": verdict,
                "why": why,
                "rule": r.source,
                "review": r.review,
                "block": r.block,
                "smoothing": sm,
                "red_line": r.red_line,
                "strike_weight": r.strike_weight,
            }
        )
    return out


def _check_effective(files: list[PolicyFile], taxonomy: Taxonomy) -> None:
    """block >= review must hold for every rule once merged with the less specific ones."""
    policy = Policy(files=files, taxonomy=taxonomy, version="")
    for f in files:
        for cat in f.rules:
            r = policy.rule(cat, f.tenant, f.channel)
            if r.block < r.review:
                raise PolicyError(
                    f.name,
                    None,
                    f"{cat}: effective block threshold {r.block} is below review {r.review} "
                    f"(review comes from {r.source} or defaults)",
                )


def check_file(path: Path, taxonomy: Taxonomy) -> PolicyFile:
    """Validate one file on its own and merged over the shipped default."""
    f = parse_file(str(path), Path(path).read_text(encoding="utf-8"), taxonomy)
    base = parse_file("default.yaml", DEFAULT_POLICY.read_text(encoding="utf-8"), taxonomy)
    _check_effective([base, f] if f.rank else [f], taxonomy)
    return f
