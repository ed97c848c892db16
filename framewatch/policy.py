"""Policy engine: YAML policy files -> the rule that applies to a category, tenant and channel.

One engine for the whole project: the streams worker (live decisions) and the check API /
`framewatch check` (one image now) both read their thresholds here, so an image is judged the
same way live and on demand. Pure Python (no Kafka, no Faust, no metrics) so it is unit-tested
directly. A policy set is every ``*.yaml`` in ``settings.streams.policy_dir`` (or the shipped
default). Each file has a ``scope`` (``{}``,
``{tenant: x}``, ``{channel: kids}`` or both) and ``rules`` per taxonomy node. Specificity:
scope first (tenant+channel > tenant > channel > default), then the deeper node; fields a rule
leaves out come from the next less specific rule, then ``defaults``. A file's ``combined``
rules (:mod:`framewatch.combine`) turn several signals together into a category's score.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from framewatch import combine, yamlfile
from framewatch.errors import TaxonomyError
from framewatch.policy_file import MAX_HISTORY as MAX_HISTORY  # the state sizes its history
from framewatch.policy_file import PolicyFileModel
from framewatch.taxonomy import Taxonomy

log = logging.getLogger(__name__)

DEFAULT_POLICY = Path(__file__).parent / "data" / "policies" / "default.yaml"


class PolicyError(yamlfile.YamlFileError):
    """A policy file is invalid; the message names the file, the line and the reason."""

    def __init__(self, file: str, line: int | None, reason: str) -> None:
        super().__init__(file, line, reason, "fix the file; the running policy stays in force")


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
    at_most: str = "block"  # none | review | block: the most this category does on its own


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
    combined: dict[str, combine.Combined] = field(default_factory=dict)

    @property
    def rank(self) -> int:
        return (2 if self.tenant else 0) + (1 if self.channel else 0)

    def applies(self, tenant: str | None, channel: str | None) -> bool:
        return (self.tenant is None or self.tenant == tenant) and (
            self.channel is None or self.channel == channel
        )


SEEN_KEPT = 100_000


@dataclass
class Policy:
    """A validated set of policy files; ``version`` is the hash of their content."""

    files: list[PolicyFile]
    taxonomy: Taxonomy
    version: str
    _cache: dict[tuple[str, str | None, str | None], Rule] = field(default_factory=dict)
    # rules by the (category, tenant, channel) asked for, bounded: tenants and channels no
    # file names all share one rule in _cache, and are kept here only up to SEEN_KEPT keys
    _seen: dict[tuple[str, str | None, str | None], Rule] = field(default_factory=dict)
    _combined: dict[tuple[str | None, str | None], tuple[combine.Combined, ...]] = field(
        default_factory=dict
    )

    def _applicable(self, tenant: str | None, channel: str | None) -> list[PolicyFile]:
        return sorted((f for f in self.files if f.applies(tenant, channel)), key=lambda f: f.rank)

    def rule(self, category: str, tenant: str | None = None, channel: str | None = None) -> Rule:
        """The effective rule for a category (most specific wins, gaps filled from less)."""
        hit = self._seen.get((category, tenant, channel))
        if hit is not None:  # the hot path: the streams worker asks per category per frame
            return hit
        r = self._rule(category, tenant, channel)
        if len(self._seen) < SEEN_KEPT:
            self._seen[(category, tenant, channel)] = r
        return r

    def _rule(self, category: str, tenant: str | None, channel: str | None) -> Rule:
        # a tenant or channel no file names is the same as none: the cache stays bounded by the
        # files, whatever tenant and channel strings requests carry
        if tenant is not None and not any(f.tenant == tenant for f in self.files):
            tenant = None
        if channel is not None and not any(f.channel == channel for f in self.files):
            channel = None
        ck = (category, tenant, channel)
        if ck in self._cache:
            return self._cache[ck]
        merged: dict[str, Any] = dict(_shipped().defaults)  # no fallbacks in code
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
            at_most="block" if red else str(merged.get("at_most", "block")),
        )
        self._cache[ck] = r
        return r

    def combined(
        self, tenant: str | None = None, channel: str | None = None
    ) -> tuple[combine.Combined, ...]:
        """The combined rules in force (a more specific file's rule of the same name wins)."""
        tenant = tenant if any(f.tenant == tenant for f in self.files) else None
        channel = channel if any(f.channel == channel for f in self.files) else None
        if (tenant, channel) not in self._combined:  # bounded by the files, as the rule cache
            out: dict[str, combine.Combined] = {}
            for f in self._applicable(tenant, channel):
                out.update(f.combined)
            self._combined[(tenant, channel)] = tuple(out.values())
        return self._combined[(tenant, channel)]

    def enforcement(self, tenant: str | None = None) -> Enforcement:
        out = _shipped().enforcement or Enforcement(half_life_days=30.0)
        for f in self._applicable(tenant, None):
            if f.enforcement is not None:
                out = f.enforcement
        return out

    def quiet_period_s(self, tenant: str | None = None, channel: str | None = None) -> float:
        out = _shipped().quiet_period_s or 0.0
        for f in self._applicable(tenant, channel):
            if f.quiet_period_s is not None:
                out = f.quiet_period_s
        return out


def parse_file(name: str, raw: str | bytes, taxonomy: Taxonomy) -> PolicyFile:
    """Validate one policy file; raises PolicyError(file, line, reason)."""
    try:
        doc = yamlfile.loads(name, raw)
    except yamlfile.YamlFileError as exc:
        raise PolicyError(exc.file, exc.line, exc.reason) from None
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        raise PolicyError(name, 1, "a policy file is a mapping (scope, defaults, rules, ...)")
    try:
        model = PolicyFileModel.model_validate(data)
    except ValidationError as exc:
        err = doc.validation_error(exc)
        raise PolicyError(name, err.line, err.reason) from None
    rules: dict[str, dict[str, Any]] = {}
    for cat, body in model.rules.items():
        try:
            taxonomy.validate(cat)
        except TaxonomyError as exc:
            raise PolicyError(name, doc.line(("rules", cat)), str(exc)) from None
        if taxonomy.is_red_line(cat) and (body.red_line is False or body.at_most is not None):
            raise PolicyError(
                name,
                doc.line(("rules", cat)),
                f"{cat} is a red line in the taxonomy; a policy cannot relax it",
            )
        rules[cat] = body.fields()
    try:
        combined = combine.parse(name, model.combined, taxonomy, doc.line)
    except combine.CombinedError as exc:
        raise PolicyError(name, exc.line, exc.reason) from None
    enf = model.enforcement
    return PolicyFile(
        name=name,
        tenant=model.scope.tenant,
        channel=model.scope.channel,
        defaults=model.defaults.fields(),
        rules=rules,
        enforcement=(
            Enforcement(
                half_life_days=enf.half_life_days or _shipped_half_life(),
                ladder=tuple(LadderStep(s.action, s.strikes) for s in enf.ladder),
            )
            if enf is not None
            else None
        ),
        quiet_period_s=model.quiet_period_s,
        combined=combined,
    )


@functools.cache
def _shipped() -> PolicyFile:
    """The shipped default.yaml's own values: the fallbacks for anything a policy set leaves
    out (its ``defaults`` section fills every rule field), so no threshold lives in code."""
    doc = yamlfile.load(DEFAULT_POLICY)
    m = PolicyFileModel.model_validate(doc.data)
    enf = m.enforcement
    assert enf is not None and enf.half_life_days, "default.yaml sets enforcement.half_life_days"
    return PolicyFile(
        name="default.yaml",
        tenant=None,
        channel=None,
        defaults=m.defaults.fields(),
        rules={},
        enforcement=Enforcement(
            enf.half_life_days, tuple(LadderStep(s.action, s.strikes) for s in enf.ladder)
        ),
        quiet_period_s=m.quiet_period_s,
    )


def _shipped_half_life() -> float:
    enf = _shipped().enforcement
    assert enf is not None
    return enf.half_life_days


def load_dir(policy_dir: Path | None, taxonomy: Taxonomy) -> Policy:
    """Read and validate every policy file; the shipped default fills in when none is a default."""
    paths = (
        sorted(Path(policy_dir).glob("*.yaml")) if policy_dir and Path(policy_dir).is_dir() else []
    )
    texts = [(p.name, p.read_bytes()) for p in paths]
    files = [parse_file(str(Path(policy_dir or ".") / n), t, taxonomy) for n, t in texts]
    if not any(f.rank == 0 for f in files):
        text = DEFAULT_POLICY.read_bytes()
        texts.insert(0, ("<shipped default.yaml>", text))
        files.insert(0, parse_file("default.yaml", text, taxonomy))
    _check_effective(files, taxonomy)
    digest = hashlib.sha256()
    for n, t in texts:
        digest.update(n.encode() + b"\0" + t + b"\0")
    return Policy(files=files, taxonomy=taxonomy, version="p-" + digest.hexdigest()[:12])


def explain(
    policy: Policy, scores: dict[str, float], tenant: str | None = None, channel: str | None = None
) -> list[dict[str, Any]]:
    """Which rule applies to each scored category, and what one frame of it would do; the
    combined rules that hold add their category (its row names the combined rule)."""
    assessed = combine.assess(policy.combined(tenant, channel), scores)
    derived = {d.rule.then: d for d in reversed(assessed) if d.holds}
    scores = combine.apply(scores, derived.values())
    out: list[dict[str, Any]] = []
    for cat, score in sorted(scores.items(), key=lambda kv: -kv[1]):
        try:
            r = policy.rule(cat, tenant, channel)
        except TaxonomyError as exc:
            out.append({"category": cat, "score": score, "verdict": "unknown", "why": str(exc)})
            continue
        sm = r.smoothing.describe()
        if r.at_most == "none":
            verdict, why = "none", f"{score:.2f}: a signal never acts alone (at_most: none)"
        elif r.at_most == "review" and score >= r.review:
            verdict, why = "review", f"{score:.2f} >= review {r.review:.2f}; review when {sm} " \
                                     "frames, never more on its own (at_most: review)"  # fmt: skip
        elif r.red_line and score >= r.block:
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
        d = derived.get(cat)
        if d is not None and d.score >= scores[cat]:
            why = f"{d.why()}; {why}"
        out.append(
            {
                "category": cat,
                "score": score,
                "verdict": verdict,
                "why": why,
                "rule": d.rule.source if d is not None and d.score >= score else r.source,
                "review": r.review,
                "block": r.block,
                "smoothing": sm,
                "red_line": r.red_line,
                "strike_weight": r.strike_weight,
            }
        )
    # a combined rule some of whose signals are present but not all: why it did not fire
    for d in assessed:
        if not d.holds and any(v > 0 for _, v in d.values):
            out.append({"category": d.rule.then, "score": 0.0, "verdict": "none",
                        "why": d.why(), "rule": d.rule.source})  # fmt: skip
    return out


@dataclass(frozen=True)
class HashHit:
    """A bank match as the policy sees it (the check API and the live scorer both report these)."""

    bank: str
    entry_id: str
    category: str
    role: str  # red_line | review


@dataclass(frozen=True)
class Verdict:
    """What one image does under the policy if it stays on screen: the live worker's decision
    once its smoothing window is full of this image (a red line needs one frame)."""

    action: str  # allow | review | block
    red_line: bool
    rationale: str
    reasons: tuple[dict[str, Any], ...] = ()


def evaluate(
    policy: Policy,
    scores: dict[str, float],
    hits: list[HashHit] | tuple[HashHit, ...] = (),
    tenant: str | None = None,
    channel: str | None = None,
) -> Verdict:
    """Decide one image with the rules of its tenant and channel, as the streams worker does.

    Red lines (a red-line category at or over its block threshold, or a red-line bank match)
    block; then any category at or over its block threshold; then review thresholds and
    review-bank matches. Scores of categories outside the taxonomy are ignored, as live.
    """
    rows = [r for r in explain(policy, scores, tenant, channel) if r["verdict"] != "unknown"]
    for h in hits:
        red = h.role == "red_line" or (
            h.category in policy.taxonomy and policy.rule(h.category, tenant, channel).red_line
        )
        rows.append({"category": h.category, "score": 1.0, "verdict": "block" if red else "review",
                     "why": f"hash match {h.bank}/{h.entry_id}" + (" (red line)" if red else ""),
                     "rule": f"hash_bank:{h.bank}:{h.entry_id}", "red_line": red})  # fmt: skip
    red_rows = [r for r in rows if r["verdict"] == "block" and r["red_line"]]
    for action, picked in (
        ("block", red_rows),
        ("block", [r for r in rows if r["verdict"] == "block"]),
        ("review", [r for r in rows if r["verdict"] == "review"]),
    ):
        if picked:
            top = picked[0]
            return Verdict(action, bool(red_rows), f"{top['category']}: {top['why']} "
                           f"(rule {top['rule']})", tuple(picked))  # fmt: skip
    if not rows:
        return Verdict("allow", False, "no scores")
    top = rows[0]
    return Verdict("allow", False, f"{top['category']}: {top['why']} (rule {top['rule']})")


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
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise PolicyError(str(path), None, f"cannot read it: {exc.strerror or exc}") from None
    f = parse_file(str(path), raw, taxonomy)
    base = parse_file("default.yaml", DEFAULT_POLICY.read_bytes(), taxonomy)
    _check_effective([base, f] if f.rank else [f], taxonomy)
    return f
