"""Keyframe mode: non-key packets never reach the decoder, keyframes that would not become
samples are not decoded either, and the keyframes are unchanged (or, without the deblocking
filter, within a few PDQ bits)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from framewatch.settings import load_settings
from ingest import framedata
from ingest.engine import SampleEngine, StreamMeta
from ingest.source import VideoSource
from tests.ingest.helpers import video


@pytest.mark.parametrize("name", ["chair-orig-22-sd-bar.mp4", "pattern-hd-no-bar.mp4"])
def test_keyframe_mode_yields_the_same_keyframes_as_full_decode(name: str) -> None:
    with VideoSource(str(video(name)), threads=1) as src:
        full = [(df.pts, df.frame.to_ndarray(format="gray")) for df in src.frames()
                if df.frame.key_frame]  # fmt: skip
    with VideoSource(str(video(name)), threads=1, keyframes_only=True) as src:
        key = [(df.pts, df.frame.to_ndarray(format="gray")) for df in src.frames()]
    assert len(full) > 1
    assert [round(p, 6) for p, _ in key] == [round(p, 6) for p, _ in full]
    for (_, a), (_, b) in zip(key, full, strict=True):
        assert np.array_equal(a, b)


def _short_gop_copy(src: str, out: str, gop: int = 10) -> str:
    """The sample re-encoded small with a keyframe every `gop` frames (3 a second at 30 fps)."""
    with av.open(src) as inp, av.open(out, "w") as dst:
        st = dst.add_stream("libx264", rate=30)
        st.width, st.height, st.pix_fmt = 320, 180, "yuv420p"
        st.codec_context.gop_size = gop
        st.options = {"preset": "ultrafast", "sc_threshold": "0", "bf": "2"}
        for i, frame in enumerate(inp.decode(video=0)):
            small = av.VideoFrame.from_ndarray(
                frame.reformat(width=320, height=180, format="yuv420p").to_ndarray(),
                format="yuv420p",
            )
            small.pts = i
            dst.mux(st.encode(small))
        dst.mux(st.encode(None))
    return out


def test_keyframes_not_due_are_not_decoded_and_samples_are_unchanged(tmp_path: Path) -> None:
    path = _short_gop_copy(video("pattern-hd-no-bar.mp4"), str(tmp_path / "gop10.mp4"))
    base = load_settings()  # duplicates kept: this is about what is decoded, not sent
    settings = base.model_copy(
        update={"ingest": base.ingest.model_copy(update={"dedup_max_distance": -1})}
    )

    def run(skip: bool) -> tuple[int, list[float]]:
        engine = SampleEngine(settings, StreamMeta("k", "a"), fps=1.0, keyframes_only=True)
        with VideoSource(path, threads=1, keyframes_only=True) as src:
            frames = src.frames(wanted=engine.wants if skip else None)
            pts = [f.pts for f in engine.process(frames)]
        return engine.counts.read, pts

    all_keys, sampled = run(skip=False)
    decoded, sampled_skipping = run(skip=True)
    assert all_keys >= 18  # 6.9 s, 3 keyframes a second
    assert sampled_skipping == sampled and len(sampled) >= 6  # one a second, as before
    # only keyframes that became samples, and the few in the decoder before its first frame
    assert len(sampled) <= decoded <= len(sampled) + 3 and decoded < all_keys / 2


@pytest.mark.parametrize("name", ["chair-orig-22-sd-bar.mp4", "pattern-hd-no-bar.mp4"])
def test_unfiltered_keyframes_hash_within_a_few_bits_of_the_filtered_ones(name: str) -> None:
    """ingest.keyframe_skip_loop_filter (on by default) really leaves the deblocking out (the
    pictures differ), and what a bank match sees barely moves: PDQ within 8 bits."""
    assert load_settings().ingest.keyframe_skip_loop_filter

    def keyframes(unfiltered: bool) -> list[av.VideoFrame]:
        with VideoSource(str(video(name)), threads=1, keyframes_only=True,
                         skip_loop_filter=unfiltered) as src:  # fmt: skip
            return [df.frame for df in src.frames()]

    filtered, unfiltered = keyframes(False), keyframes(True)
    assert len(filtered) == len(unfiltered) > 1
    changed = 0
    for a, b in zip(filtered, unfiltered, strict=True):
        ga, gb = a.to_ndarray(format="gray"), b.to_ndarray(format="gray")
        changed += not np.array_equal(ga, gb)
        bits = bin(int(framedata.frame_pdq(a)[0], 16) ^ int(framedata.frame_pdq(b)[0], 16))
        assert bits.count("1") <= 8, name
    assert changed == len(filtered)
