"""Combined rules: several signals together give a category ("possible minor AND sexual").

Some findings mean little alone and much together: a face that may be a child's is no
violation, nor is a sexual score under the block line, but both in one frame is a child-safety
red line; a knife in a kitchen is fine, a knife and a person on a street stream may not be. A
policy file's ``combined`` section says so::

    combined:
      minor_sexual:
        all: {signal.minor_possible: 0.5, sexual: 0.5}   # every signal at or over its score
        then: child_safety.minor_sexualization
        within: 1          # frames: 1 = the same frame; N = each signal in one of the last N

A signal is a taxonomy node; its value in a frame is the highest score at that node or below
it. When every signal reaches its minimum, the rule gives ``then`` the lowest of their values
(a fuzzy AND: the combination is only as sure as its weakest part), and from there ``then``'s
own rule decides as for a model score (review/block thresholds, smoothing, red line, strikes).
So the streams worker, ``framewatch check`` and ``/v1/check`` decide combinations the same way,
because they all feed :func:`derive`'s scores to the one policy engine. Conditions read the
frame's own scores, never another combined rule's result (no chains, no cycles).

Pure functions, no I/O; :mod:`framewatch.policy` parses the section with :func:`parse`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from framewatch.errors import TaxonomyError
from framewatch.taxonomy import Taxonomy

# the longest co-occurrence window, in frames; the stream state keeps this many frames' signals
MAX_WITHIN = 64


def _unit(v: float) -> float:
    if not 0 <= v <= 1:
        raise ValueError(f"a signal's minimum score is between 0 and 1, got {v!r}")
    return float(v)


class CombinedModel(BaseModel):
    """One combined rule as written in a policy file."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    all: dict[str, Annotated[float, AfterValidator(_unit)]] = Field(min_length=2, strict=False)
    then: str
    within: int = Field(1, ge=1, le=MAX_WITHIN)
    enabled: bool = True


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: a cheap cache key
class Combined:
    """A validated combined rule; ``source`` names it as ``file:combined.name``."""

    name: str
    all: tuple[tuple[str, float], ...]
    then: str
    within: int
    enabled: bool
    source: str

    def describe(self) -> str:
        parts = " AND ".join(f"{c} >= {m:g}" for c, m in self.all)
        frames = "in the same frame" if self.within == 1 else f"within {self.within} frames"
        return f"{parts} {frames} -> {self.then}"


@dataclass(frozen=True)
class Derived:
    """A combined rule at one frame: each signal's value, whether all reach their minimum,
    and the score it gives ``rule.then`` (the lowest value) when they do."""

    rule: Combined
    score: float
    values: tuple[tuple[str, float], ...]
    holds: bool = True

    def why(self) -> str:
        got = " and ".join(f"{c} {v:.2f} {'>=' if v >= m else '<'} {m:g}" for (c, v), (_, m)
                           in zip(self.values, self.rule.all, strict=True))  # fmt: skip
        where = "" if self.rule.within == 1 else f" within {self.rule.within} frames"
        if not self.holds:
            return f"combined rule {self.rule.name} not met: {got}{where}"
        return f"combined rule {self.rule.name}: {got}{where}; scores the lowest, {self.score:.2f}"


def parse(
    name: str,
    rules: Mapping[str, CombinedModel],
    taxonomy: Taxonomy,
    line: Callable[[tuple[str, ...]], int | None],
) -> dict[str, Combined]:
    """Check a file's combined rules against the taxonomy; ``line(key path)`` gives a key's
    line for the :class:`CombinedError` the caller turns into its own file:line error."""
    out: dict[str, Combined] = {}
    for rname, m in rules.items():
        at = ("combined", rname)
        for cat in (*m.all, m.then):
            try:
                taxonomy.validate(cat)
            except TaxonomyError as exc:
                key = (*at, "then") if cat == m.then else (*at, "all", cat)
                raise CombinedError(line(key), f"combined.{rname}: {exc}") from None
        for cat in m.all:
            if _under(m.then, cat) or _under(cat, m.then):
                raise CombinedError(
                    line((*at, "then")),
                    f"combined.{rname}: then {m.then} overlaps its own signal {cat}; a rule "
                    "cannot feed itself",
                )
        out[rname] = Combined(
            rname, tuple(m.all.items()), m.then, m.within, m.enabled, f"{name}:combined.{rname}"
        )
    return out


class CombinedError(ValueError):
    """A combined rule that cannot be used (carried to PolicyError with its line)."""

    def __init__(self, line: int | None, reason: str) -> None:
        super().__init__(reason)
        self.line, self.reason = line, reason


def _under(cat: str, node: str) -> bool:
    return cat == node or cat.startswith(node + ".")


def signal_value(scores: Mapping[str, float], node: str) -> float:
    """The highest score at ``node`` or below it in one frame (0 when there is none)."""
    best, prefix = 0.0, node + "."
    for c, v in scores.items():
        if v > best and (c == node or c.startswith(prefix)):
            best = float(v)
    return best


@functools.lru_cache(maxsize=256)
def _nodes(rules: tuple[Combined, ...]) -> tuple[str, ...]:
    return tuple(sorted({c for r in rules if r.enabled for c, _ in r.all}))


def signals(rules: Sequence[Combined], scores: Mapping[str, float]) -> dict[str, float]:
    """One frame's value of every signal the rules read (what the stream state keeps)."""
    return {n: v for n in _nodes(tuple(rules)) if (v := signal_value(scores, n)) > 0}


def assess(
    rules: Sequence[Combined],
    scores: Mapping[str, float],
    past: Sequence[Mapping[str, float]] = (),
    now: Mapping[str, float] | None = None,
) -> list[Derived]:
    """Every enabled combined rule at this frame, held or not, the held ones first (best first).

    ``past`` is earlier frames' :func:`signals`, newest last; a rule ``within`` N frames takes
    each signal's highest value over this frame and the N-1 before it. ``now``: this frame's
    :func:`signals` when the caller has them already.
    """
    now = signals(rules, scores) if now is None else now
    out: list[Derived] = []
    for r in rules:
        if not r.enabled:
            continue
        if r.within == 1:
            values = tuple((c, now.get(c, 0.0)) for c, _ in r.all)
        else:
            frames = [now, *past[-(r.within - 1) :]]
            values = tuple((c, max(f.get(c, 0.0) for f in frames)) for c, _ in r.all)
        holds = all(v >= m for (_, v), (_, m) in zip(values, r.all, strict=True))
        out.append(Derived(r, min(v for _, v in values) if holds else 0.0, values, holds))
    return sorted(out, key=lambda d: (not d.holds, -d.score, d.rule.name))


def derive(
    rules: Sequence[Combined],
    scores: Mapping[str, float],
    past: Sequence[Mapping[str, float]] = (),
    now: Mapping[str, float] | None = None,
) -> list[Derived]:
    """The combined rules that hold at this frame, best first (see :func:`assess`)."""
    return [d for d in assess(rules, scores, past, now) if d.holds]


def apply(scores: Mapping[str, float], derived: Iterable[Derived]) -> dict[str, float]:
    """The frame's scores with each derived category added (the higher score wins)."""
    out = dict(scores)
    for d in derived:
        out[d.rule.then] = max(out.get(d.rule.then, 0.0), d.score)
    return out
