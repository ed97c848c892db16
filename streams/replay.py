"""Shadow a policy or a model set on retained scores: `framewatch replay`.

Before a policy change goes live, its effect can be read off the traffic already scored: every
retained record of the scores topic is fed, stream by stream in order, through the same state
machine the worker runs (:func:`streams.state.step`), once with the running policy and once with
the new one, from an empty state at ``--from``. A model set in shadow (scoring.shadow_models) is
read the same way: the live records with the running policy against the shadow records of the
same frames (:func:`pair`) with the running or a new policy. Nothing is written anywhere. The
report counts, per category (the top reason of each decision), the blocks and reviews each side
would have made, and the streams whose last state differs. Pure: :func:`compare` takes records.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framewatch import scope
from framewatch.errors import FramewatchError
from framewatch.records import Scores
from framewatch.taxonomy import Taxonomy
from streams.policy import Policy, PolicyError, load_dir
from streams.state import StreamState, step


@dataclass
class Report:
    """What the two policies decide on the same records."""

    records: int = 0  # records of the "now" side (the "new" side has as many when paired)
    streams: int = 0
    old: Counter[tuple[str, str]] = field(default_factory=Counter)  # (category, action) -> n
    new: Counter[tuple[str, str]] = field(default_factory=Counter)
    red_lines: tuple[int, int] = (0, 0)
    changed_streams: list[str] = field(default_factory=list)  # last state differs

    def rows(self) -> list[dict[str, Any]]:
        cats = sorted({c for c, _ in self.old} | {c for c, _ in self.new})
        out = []
        for c in cats:
            r: dict[str, Any] = {"category": c}
            for action in ("block", "review"):
                a, b = self.old[(c, action)], self.new[(c, action)]
                r[f"{action}s_now"], r[f"{action}s_new"], r[f"{action}s_change"] = a, b, b - a
            out.append(r)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"records": self.records, "streams": self.streams, "categories": self.rows(),
                "red_lines_now": self.red_lines[0], "red_lines_new": self.red_lines[1],
                "changed_streams": self.changed_streams}  # fmt: skip


def compare(
    records: Iterable[Scores], old: Policy, new: Policy, new_records: Iterable[Scores] | None = None
) -> Report:
    """Decide ``records`` under ``old`` and ``new_records`` (default: the same records) under
    ``new``; records of a stream must come in order."""
    rep = Report()
    now = list(records)
    rep.records = len(now)
    a, red_a = _decide(now, old, rep.old)
    b, red_b = _decide(now if new_records is None else new_records, new, rep.new)
    rep.streams = len(a.keys() | b.keys())
    rep.red_lines = (red_a, red_b)
    rep.changed_streams = sorted(
        k for k in a.keys() | b.keys()
        if a.get(k, StreamState()).state != b.get(k, StreamState()).state
    )  # fmt: skip
    return rep


def _decide(
    records: Iterable[Scores], policy: Policy, tally: Counter[tuple[str, str]]
) -> tuple[dict[str, StreamState], int]:
    """Run the worker's state machine over the records; count blocks and reviews by top reason.
    Returns each stream's last state and the red lines."""
    states: dict[str, StreamState] = {}
    red = 0
    for sc in records:
        key = scope.stream(sc)
        o = step(states.get(key) or StreamState(), sc, policy, decided_at=sc.captured_at)
        states[key] = o.state
        d = o.decision
        if d is not None and d.action in ("block", "review") and d.reasons:
            tally[(d.reasons[0].category, d.action)] += 1
            red += d.red_line
    return states, red


@dataclass
class Paired:
    """The frames two scores topics both hold, each side in its own order."""

    now: list[Scores]
    new: list[Scores]
    only_now: int  # frames the shadow has no record of (dropped: it was behind, or a model threw)
    only_new: int  # shadow records whose live record is gone (retention) or before --from


def pair(now: Iterable[Scores], new: Iterable[Scores]) -> Paired:
    """Keep the frames (tenant, stream, frame id) present on both sides."""

    def key(sc: Scores) -> tuple[str, str]:
        return scope.stream(sc), sc.frame_id

    now, new = list(now), list(new)
    a, b = {key(s) for s in now}, {key(s) for s in new}
    both = a & b
    return Paired([s for s in now if key(s) in both], [s for s in new if key(s) in both],
                  len(a - both), len(b - both))  # fmt: skip


def candidate(running_dir: Path | None, new: Path, taxonomy: Taxonomy) -> Policy:
    """The policy to try: NEW as a folder, or the running folder with the file NEW added (a
    file of the same name replaced). Validated like any policy (PolicyError: file:line)."""
    if new.is_dir():
        return load_dir(new, taxonomy)
    if not new.is_file():
        raise FramewatchError(f"--policy {new}: no such file or folder")
    with tempfile.TemporaryDirectory(prefix="fw-replay-") as tmp:
        where = {new.name: new}
        if running_dir is not None and Path(running_dir).is_dir():
            for p in Path(running_dir).glob("*.yaml"):
                shutil.copy(p, Path(tmp) / p.name)
                where.setdefault(p.name, p)
        shutil.copy(new, Path(tmp) / new.name)
        try:
            return load_dir(Path(tmp), taxonomy)
        except PolicyError as exc:  # name the user's file, not the scratch copy
            name = Path(exc.file).name
            raise PolicyError(str(where.get(name, exc.file)), exc.line, exc.reason) from None
