"""A live stream's decoder is woken once a batch, not once a frame, and samples still leave on
time (``ingest.decode_batch_s``)."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from devkit.demo import make_edited_copy
from devkit.testdata import video
from framewatch.settings import Settings
from ingest.engine import SampleEngine, StreamMeta
from ingest.source import VideoSource

SECONDS = 2.0
BATCH_S = 0.4


def _samples(settings: Settings, path: Path, *, realtime: bool, batch_s: float):
    """(pts of each sample, wall lateness of each sample, wall time each decoded frame came)."""
    engine = SampleEngine(settings, StreamMeta("cam", "acct"), fps=1.0)
    came: list[float] = []
    wall0 = time.monotonic()

    def timed(frames):
        for f in frames:
            if f.pts >= SECONDS:
                return
            came.append(time.monotonic())
            yield f

    pts, late = [], []
    with VideoSource(str(path), threads=1, realtime=realtime, batch_s=batch_s,
                     sample_fps=settings.ingest.hot_fps) as src:  # fmt: skip
        for frame in engine.process(timed(src.frames(wanted=engine.wants))):
            pts.append(frame.pts)
            late.append(time.monotonic() - wall0 - frame.pts)
    return pts, late, came


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("batch")
    chair = video("chair-orig-22-sd-bar.mp4")
    # without B-frames (x264 ultrafast, like a low-latency live encoder), and the original with
    return {
        "no-bframes": make_edited_copy(chair, tmp / "edited.mp4", SECONDS + 0.5),
        "bframes": chair,
    }


@pytest.mark.parametrize("clip", ["no-bframes", "bframes"])
def test_a_paced_stream_decodes_in_batches_and_its_samples_leave_on_time(
    settings: Settings, clips: dict[str, Path], clip: str
) -> None:
    want_pts, _, _ = _samples(settings, clips[clip], realtime=False, batch_s=0.0)
    pts, late, came = _samples(settings, clips[clip], realtime=True, batch_s=BATCH_S)

    # the same samples, each handed over when its frame arrives, not held for its batch
    assert pts == want_pts and len(pts) >= 2
    assert max(late) < 0.15, f"samples came {late} s after their frames' time"
    # the decoder woke for bursts of frames: a new burst only after a pause in what came out.
    # A batch a BATCH_S, one at each sample, and with B-frames one for each frame the decoder
    # still holds back (reordering) before the sample is out
    bursts = 1 + sum(b - a > 0.02 for a, b in itertools.pairwise(came))  # frames: 33 ms apart
    assert len(came) >= 55
    assert bursts <= SECONDS / BATCH_S + 4 * len(pts) + 4, (
        f"{bursts} wake-ups for {len(came)} frames"
    )
