"""ingest.decode_skip_nonref: full decode leaves out the frames no other frame refers to. The
samples stay what a full decode gives: same count, each within one frame interval of the full
decode's, and the frames that remain decode bit for bit (same PDQ, same thumbnail)."""

from __future__ import annotations

import pytest

from framewatch.records import Frame
from framewatch.settings import load_settings
from ingest.engine import SampleEngine, StreamMeta
from ingest.runner import StreamIngester
from ingest.sampling import hamming
from ingest.source import VideoSource
from tests.ingest.helpers import video

CHAIR = "chair-orig-22-sd-bar.mp4"  # B-frames: about 45 % of its frames are unreferenced


def _skip_frame(*, keyframes: bool = False, fps: float | None = None, **ingest: object) -> str:
    settings = load_settings(ingest=ingest) if ingest else load_settings()
    ing = StreamIngester(
        settings, str(video(CHAIR)), StreamMeta("s", "a"), fps=fps, keyframes_only=keyframes
    )
    with ing._connection() as src:
        assert src._container is not None
        next(src.frames())  # opened and decoding
        return src._container.streams.video[0].codec_context.skip_frame


def test_unreferenced_frames_are_skipped_by_default() -> None:
    assert _skip_frame() == "NONREF"


def test_the_setting_turns_it_off() -> None:
    assert _skip_frame(decode_skip_nonref=False) == "DEFAULT"


def test_dense_sampling_decodes_every_frame() -> None:
    # the chair video is 30 fps: samples at 10 fps (or hot at 10) need more frames than the
    # referenced ones guarantee
    assert _skip_frame(fps=10) == "DEFAULT"
    assert _skip_frame(hot_fps=10) == "DEFAULT"
    assert _skip_frame(fps=7.5) == "NONREF"  # a quarter of the frame rate


def test_keyframe_mode_still_decodes_keyframes_only() -> None:
    assert _skip_frame(keyframes=True) == "NONKEY"


def _samples(name: str, fps: float, skip_nonref: bool) -> tuple[list[Frame], int, float]:
    # duplicate suppression off: it compares neighbouring samples at 8 bits, so a sample taken
    # one frame later may flip it either way (1 of 88 samples of the chair video at 4 fps)
    settings = load_settings(ingest={"dedup_max_distance": -1})
    engine = SampleEngine(settings, StreamMeta("s", "a"), fps=fps)
    with VideoSource(
        str(video(name)), threads=1, skip_nonref=skip_nonref, sample_fps=max(fps, 4.0)
    ) as src:
        out = list(engine.process(src.frames(wanted=engine.wants)))
        return out, engine.counts.read, 1.0 / (src.fps or 30.0)


@pytest.mark.parametrize("fps", [1.0, 4.0])  # default and hot sampling
@pytest.mark.parametrize("name", [CHAIR, "doorknob-hd-no-bar.mp4", "test-padded-dimensions.mp4"])
def test_samples_keep_their_count_time_and_pdq(name: str, fps: float) -> None:
    full, full_read, frame_s = _samples(name, fps, skip_nonref=False)
    fast, fast_read, _ = _samples(name, fps, skip_nonref=True)
    assert fast_read < 0.75 * full_read  # the decoder really skipped frames
    assert len(fast) == len(full) > 1
    same_time = 0
    for a, b in zip(fast, full, strict=True):
        assert a.sample_reason == b.sample_reason
        assert 0 <= a.pts - b.pts <= frame_s + 1e-6  # the next frame at most
        if abs(a.pts - b.pts) < 1e-6:  # the same frame: decoded exactly as before
            same_time += 1
            assert hamming(a.pdq, b.pdq) == 0
            assert a.jpeg == b.jpeg
    assert same_time >= len(full) // 2
