"""A quiet stream's frames stay in memory (no changelog write), and a crash anywhere still
decides the same: every restart from the last state written, replaying from any commit point,
gives the decisions (ids and actions) of the run without a crash, and nothing else."""

from __future__ import annotations

import json
from typing import Any

import pytest

from framewatch.records import Decision, Scores
from framewatch.settings import load_settings
from streams.processor import Processor
from tests.streams.helpers import scores

# signals kept for the combined policy's rule, each under its minimum
BENIGN = {
    "hate.speech": 0.1,
    "violence.gore": 0.05,
    "sexual.explicit": 0.02,
    "signal.face": 0.3,
    "signal.person": 0.3,
}


def life() -> list[Scores]:
    """Benign, a review by smoothing, quiet until it clears, a block by smoothing, a new life
    (session) with a signal over its minimum alone then the other one (a combined review
    under the combined policy), then a red line; benign frames between each."""
    frames: list[Scores] = []
    t = 1000.0

    def add(n: int, cats: dict[str, float], session: str, dt: float = 1.0) -> None:
        nonlocal t
        for _ in range(n):
            seq = len(frames)
            frames.append(scores(seq, t0=t - seq, cats={**BENIGN, **cats}, session=session))
            t += dt

    add(8, {}, "a")
    add(1, {"hate.speech": 0.6}, "a")  # one flagged frame: smoothed away (3 of 5)
    add(6, {}, "a")
    add(3, {"hate.speech": 0.6}, "a")  # review
    add(9, {}, "a", dt=10.0)  # quiet for 60 s: allow
    add(6, {}, "a")
    add(3, {"violence.gore": 0.95}, "a")  # block
    add(4, {}, "a")
    add(6, {}, "b")
    add(1, {"signal.face": 0.9}, "b")  # a signal over its minimum, alone: a quiet window
    add(1, {"violence.weapons": 0.7}, "b")  # with it, armed_person: a review (combined only)
    add(6, {}, "b")  # a new life: ok again
    add(1, {"child_safety.csam": 0.9}, "b")  # red line
    add(3, {}, "b")
    return frames


COMBINED = """
scope: {tenant: default}
combined:
  armed_person:
    all: {violence.weapons: 0.6, signal.face: 0.5}
    then: violence.graphic
    within: 3
rules:
  violence.graphic: {smoothing: {k: 1, n: 1}}  # the combination decides on one frame
"""


@pytest.fixture(scope="module", params=["shipped", "combined"])
def proc(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Processor:
    """The shipped policy, and one whose combined rule keeps signals of the last frames."""
    if request.param == "shipped":
        return Processor(load_settings(streams={"policy_dir": "/nonexistent"}))
    folder = tmp_path_factory.mktemp("policies")
    (folder / "armed.yaml").write_text(COMBINED)
    return Processor(load_settings(streams={"policy_dir": str(folder)}))


def feed(
    proc: Processor, frames: list[Scores], mem: dict[str, Any] | None, disk: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, list[tuple[str, str]], int]:
    """Run frames as the worker does: memory always, the changelog (``disk``) only when the
    processor says so. Returns both, the decisions (id, action) and the writes."""
    out: list[tuple[str, str]] = []
    writes = 0
    for sc in frames:
        res = proc.on_scores(mem, sc)
        mem = res.state
        if res.persist:  # a copy: the next steps change the state's lists in place
            disk, writes = json.loads(json.dumps(res.state)), writes + 1
        out += [
            (o.record.decision_id, o.record.action)
            for o in res.outputs
            if isinstance(o.record, Decision)
        ]
    return mem, disk, out, writes


def test_quiet_frames_are_not_written(proc: Processor) -> None:
    frames = life()
    _, _, out, writes = feed(proc, frames, None, None)
    ours = str(proc.settings.streams.policy_dir) != "/nonexistent"  # the combined policy
    combined = ["review"] if ours else []
    assert [a for _, a in out] == ["review", "allow", "block", *combined, "block"]
    assert writes < len(frames)
    _, _, _, writes = feed(proc, frames[:8], None, None)
    assert writes == 1  # a benign stream: only its first frame (its session) is written


@pytest.mark.parametrize("lag", [0, 1, 3, 8])
def test_a_crash_anywhere_decides_the_same(proc: Processor, lag: int) -> None:
    """Crash after frame ``c``; the last commit was ``lag`` frames earlier. The restarted
    worker restores what was written (up to the crash) and replays from the commit."""
    frames = life()
    _, _, want, _ = feed(proc, frames, None, None)
    for c in range(len(frames)):
        commit = max(0, c + 1 - lag)
        _, disk, before, _ = feed(proc, frames[: c + 1], None, None)
        _, _, after, _ = feed(proc, frames[commit:], disk, disk)
        got = before + after
        assert set(got) == set(want), f"crash after frame {c}, commit at {commit}"
        assert sorted(set(got)) == sorted(set(want))
