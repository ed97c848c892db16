"""The optional NudeNet model agrees with NudeNet's own detector (skipped when not installed)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.scoring.conftest import frames

nudenet = pytest.importorskip(
    "nudenet", reason="optional AGPL extra: pip install --no-deps nudenet"
)


@pytest.fixture(scope="module")
def ours():  # type: ignore[no-untyped-def]
    from scoring.model import load_models

    (m,) = load_models(["nudenet-320n"], [], ["CPUExecutionProvider"])
    return m


def _images() -> list[np.ndarray]:
    imgs = frames("doorknob-hd-no-bar.mp4", every=40, count=2)
    imgs += frames("chair-orig-22-sd-bar.mp4", every=40, count=2)
    return imgs


def test_preprocessing_equals_nudenets_own_blob(ours) -> None:  # type: ignore[no-untyped-def]
    from nudenet.nudenet import _read_image

    for img in _images():
        theirs = _read_image(img, 320)[0][0]
        mine, _ = ours.preprocess(img)
        assert mine.shape == theirs.shape
        diff = np.abs(mine - theirs)
        assert diff.max() < 1e-4, diff.max()


def test_detections_agree_with_nudenet_detector(ours) -> None:  # type: ignore[no-untyped-def]
    det = nudenet.NudeDetector(providers=["CPUExecutionProvider"])
    for img in _images():
        theirs = sorted((d["class"], round(d["score"], 2)) for d in det.detect(img))
        (r,) = ours.run([img])
        mine = sorted((d.label, round(d.score, 2)) for d in r.detections)
        assert [m[0] for m in mine] == [t[0] for t in theirs]
        for m, t in zip(mine, theirs, strict=True):
            assert abs(m[1] - t[1]) <= 0.03
        # safe frames: nothing sexual
        assert not any(k.startswith("sexual") and v > 0.25 for k, v in r.scores.items())
