"""Scene cuts in real video: a hard cut between two shots is sampled at once, as ``scene_cut``;
a continuous shot gives none (``ingest.scene_cut_threshold``, checked 5 times a second)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from devkit.testdata import video
from framewatch.settings import Settings
from ingest.engine import SampleEngine, StreamMeta
from ingest.source import VideoSource

CUT_AT = 1.5  # seconds into the spliced clip


def _splice(first: Path, second: Path, dst: Path, size: tuple[int, int] = (640, 360)) -> Path:
    """CUT_AT seconds of `first`, then `second` at a quarter of its brightness (a cut to a dark
    shot: two shots lit alike differ by 0.09-0.15, under the default threshold of 0.25), both
    scaled to `size`, as one 30 fps H.264 file."""
    with av.open(str(dst), "w") as out:
        st = out.add_stream("libx264", rate=30)
        st.width, st.height, st.pix_fmt = *size, "yuv420p"
        st.options = {"preset": "ultrafast", "crf": "23"}
        n = 0
        for src, limit in ((first, CUT_AT), (second, CUT_AT)):
            with av.open(str(src)) as inp:
                for i, frame in enumerate(inp.decode(video=0)):
                    if i >= limit * 30:
                        break
                    yuv = frame.reformat(width=size[0], height=size[1], format="yuv420p")
                    arr = yuv.to_ndarray()
                    if src is second and second != first:
                        luma = arr[: size[1]]  # yuv420p as one array: the Y rows first
                        luma[:] = (16 + (luma.astype(np.int16) - 16) // 4).astype(np.uint8)
                    f = av.VideoFrame.from_ndarray(arr, format="yuv420p")
                    f.pts = n
                    n += 1
                    out.mux(st.encode(f))
        out.mux(st.encode(None))
    return dst


def _reasons(settings: Settings, path: Path) -> list[tuple[float, str]]:
    engine = SampleEngine(settings, StreamMeta("cam", "acct"), fps=0.25)  # one interval sample
    with VideoSource(str(path), threads=1) as src:
        return [(f.pts, f.sample_reason) for f in engine.process(src.frames(wanted=engine.wants))]


@pytest.mark.parametrize("second", ["pattern-hd-no-bar.mp4", "chair-orig-22-sd-bar.mp4"])
def test_a_hard_cut_is_sampled_as_a_scene_cut_within_a_check(
    settings: Settings, tmp_path: Path, second: str
) -> None:
    clip = _splice(video("doorknob-hd-no-bar.mp4"), video(second), tmp_path / "cut.mp4")
    got = _reasons(settings, clip)
    cuts = [t for t, why in got if why == "scene_cut"]
    assert cuts, f"no scene cut found in {got}"
    check_s = 1.0 / settings.ingest.scene_check_fps
    assert CUT_AT - 1e-6 <= cuts[0] <= CUT_AT + check_s + 1e-6, got


def test_one_continuous_shot_has_no_scene_cut(settings: Settings, tmp_path: Path) -> None:
    clip = _splice(video("doorknob-hd-no-bar.mp4"), video("doorknob-hd-no-bar.mp4"),
                   tmp_path / "same.mp4")  # fmt: skip
    got = _reasons(settings, clip)
    assert got[0][1] == "first"
    assert not [t for t, why in got if why == "scene_cut"], got
