"""How the scores of several models merge into one per category, and how a low-information
frame (a flat wall, a black screen) is kept from raising classifier alarms.

Pure functions: the scorer, the check API, `framewatch eval` and the fusion benchmark all call
these, so the same frame always fuses the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

from framewatch.settings.scoring import FusionRule, ScoringSettings

# categories decided by hash matching, never by a classifier: the quality gate leaves them alone
HASH_ROOTS = ("known_bad",)


def rule_for(path: str, rules: Mapping[str, FusionRule], default: FusionRule) -> FusionRule:
    """The rule of the deepest configured node at or above `path` (like policy rules)."""
    node = path
    while node:
        if node in rules:
            return rules[node]
        node = node.rpartition(".")[0]
    return default


def fuse_one(votes: list[tuple[float, str]], rule: FusionRule) -> tuple[float, str]:
    """One category's (score, model ref) votes -> fused score and who it is attributed to.

    max: the highest; mean: the mean over the models that report the category; agree: the k-th
    highest (the score that at least k models reach; 0 when fewer than k report it).
    """
    ranked = sorted(votes, key=lambda v: v[0], reverse=True)
    if rule.method == "max":
        return ranked[0]
    if rule.method == "mean":
        refs = "+".join(sorted(r for _, r in ranked))
        return sum(v for v, _ in ranked) / len(ranked), refs
    if len(ranked) < rule.k:
        return 0.0, "+".join(sorted(r for _, r in ranked))
    return ranked[rule.k - 1]


def fuse(
    per_model: Mapping[str, Mapping[str, float]],
    rules: Mapping[str, FusionRule],
    default: FusionRule,
) -> tuple[dict[str, float], dict[str, str]]:
    """{model ref: {path: score}} -> ({path: fused score}, {path: model ref(s) behind it})."""
    votes: dict[str, list[tuple[float, str]]] = {}
    for ref, scores in per_model.items():
        for path, v in scores.items():
            votes.setdefault(path, []).append((float(min(max(v, 0.0), 1.0)), ref))
    out: dict[str, float] = {}
    refs: dict[str, str] = {}
    for path, vs in votes.items():
        out[path], refs[path] = fuse_one(vs, rule_for(path, rules, default))
    return out, refs


def gate(
    scores: dict[str, float], quality: int | None, floor: int, factor: float
) -> dict[str, float]:
    """Damp classifier scores of a frame whose PDQ quality is under `floor` (few edges: flat
    walls, black or blurred frames, where classifiers guess); factor 0 drops them. Hash
    categories and frames of unknown quality pass unchanged."""
    if quality is None or quality >= floor:
        return scores
    return {
        p: (v if p.split(".")[0] in HASH_ROOTS else v * factor)
        for p, v in scores.items()
        if factor > 0 or p.split(".")[0] in HASH_ROOTS
    }


def signature(sc: ScoringSettings) -> str:
    """What the fused scores depend on besides the models (part of the score cache's key)."""
    rules = ",".join(f"{p}={r.method}{r.k}" for p, r in sorted(sc.fusion.items()))
    d = sc.fusion_default
    return f"{d.method}{d.k};{rules};q{sc.quality_floor}x{sc.low_quality_factor}"
