"""Keyframe mode: non-key packets never reach the decoder, and the keyframes are unchanged."""

from __future__ import annotations

import numpy as np
import pytest

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
