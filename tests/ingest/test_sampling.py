"""Unit tests of the pure sampling decisions."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.sampling import DuplicateSuppressor, IntervalSampler, SceneCutDetector, hamming


def run(sampler: IntervalSampler, pts: list[float]) -> list[tuple[float, str]]:
    return [(t, r) for t in pts if (r := sampler.decide(t)) is not None]


def test_interval_samples_first_frame_then_by_presentation_time() -> None:
    pts = [i / 30 for i in range(300)]  # 10 s at 30 fps
    got = run(IntervalSampler(1.0, max_jump_s=5.0), pts)
    assert got[0] == (0.0, "first")
    assert len(got) == 10
    assert all(r == "interval" for _, r in got[1:])
    assert [round(t) for t, _ in got] == list(range(10))


def test_interval_is_by_time_not_frame_count_for_variable_frame_rate() -> None:
    # 5 s at 60 fps then 5 s at 10 fps: still one sample per second
    pts = [i / 60 for i in range(300)] + [5 + i / 10 for i in range(50)]
    assert len(run(IntervalSampler(1.0, max_jump_s=5.0), pts)) == 10


def test_timestamps_going_backwards_reanchor_instead_of_stalling() -> None:
    pts = [i / 30 for i in range(90)] + [i / 30 for i in range(90)]  # restarts at 0
    got = run(IntervalSampler(1.0, max_jump_s=5.0), pts)
    assert len(got) == 6  # 3 s + 3 s, not 3 then silence
    jump = [i / 30 for i in range(30)] + [1000 + i / 30 for i in range(60)]
    assert len(run(IntervalSampler(1.0, max_jump_s=5.0), jump)) == 3


def test_gap_does_not_burst_catch_up_samples() -> None:
    got = run(IntervalSampler(2.0, max_jump_s=5.0), [0.0, 0.1, 3.0, 3.1, 3.2, 3.5])
    assert [t for t, _ in got] == [0.0, 3.0, 3.5]


def test_set_fps_takes_effect_at_the_next_sample() -> None:
    s = IntervalSampler(1.0, max_jump_s=5.0)
    assert s.decide(0.0) == "first"
    s.set_fps(4.0)
    got = run(s, [i / 30 for i in range(1, 60)])
    assert len(got) == 7  # 0.25 .. 1.75 s


def test_scene_cut_on_big_change_only_and_not_too_often() -> None:
    det = SceneCutDetector(threshold=0.25, min_gap_s=0.5)
    dark, bright = np.zeros((32, 32), np.uint8), np.full((32, 32), 255, np.uint8)
    assert not det.is_cut(0.0, dark)
    assert not det.is_cut(0.1, dark + 13)
    assert det.is_cut(0.2, bright)
    assert not det.is_cut(0.3, dark)  # within min gap
    assert det.is_cut(1.0, bright)


def test_scene_change_is_the_mean_absolute_difference_of_8_bit_signatures() -> None:
    det = SceneCutDetector(threshold=0.25)
    half = np.zeros((32, 32), np.uint8)
    half[:, :16] = 255
    assert det.change(np.full((32, 32), 200, np.uint8)) == 0.0  # nothing to compare with yet
    assert det.change(half) == pytest.approx((200 * 16 + 55 * 16) / 32 / 255)
    assert det.change(half) == 0.0


def test_duplicates_suppressed_but_heartbeat_still_sent() -> None:
    a = "0" * 64
    near = "0" * 63 + "7"  # 3 bits away
    far = "f" * 64
    d = DuplicateSuppressor(max_distance=8, heartbeat_s=10)
    assert d.decide(a, 0.0, "first") == "first"
    assert d.decide(near, 1.0, "interval") is None
    assert d.decide(near, 5.0, "interval") is None
    assert d.decide(near, 10.5, "interval") == "heartbeat"
    assert d.decide(far, 11.0, "interval") == "interval"
    assert hamming(a, far) == 256


def test_suppression_disabled_with_negative_distance() -> None:
    d = DuplicateSuppressor(max_distance=-1, heartbeat_s=10)
    assert d.decide("0" * 64, 0.0, "first") == "first"
    assert d.decide("0" * 64, 1.0, "interval") == "interval"


def test_due_predicts_decide_without_changing_it() -> None:
    pts = [0.0, 0.4, 0.9, 1.0, 1.2, 2.5, 2.6, 0.3, 0.5, 20.0, 20.4, 21.1]  # backwards, a jump
    peek, real = IntervalSampler(1.0, max_jump_s=5.0), IntervalSampler(1.0, max_jump_s=5.0)
    for t in pts:
        assert peek.due(t) == (real.decide(t) is not None), t
        peek.decide(t)
