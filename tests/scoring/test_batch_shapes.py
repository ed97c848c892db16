"""A GPU session meets only the batch sizes warmed before the first live frame: ONNX Runtime's
CUDA convolutions rebuild their cuDNN plan (seconds) whenever the input shape changes, and a
live batcher makes every size up to max_batch."""

from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np
import pytest

from framewatch.settings import Settings
from framewatch.settings.scoring import ScoringSettings
from scoring.model import Model, batch_shapes, load_models, shape_for, with_cuda_options
from scoring.scorer import Scorer
from scoring.service import build_scorer
from tests.scoring.test_preprocess import EVAL


def eval_images() -> list[np.ndarray]:
    """Real photos (devkit/data/eval), BGR as the scorer decodes them."""
    paths = sorted(p for p in EVAL.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    return [cv2.imread(str(p)) for p in paths[:4]]


class Recording:
    """The model's own session, noting the batch size of every run."""

    def __init__(self, session: Any) -> None:
        self.session, self.sizes = session, []  # type: Any, list[int]

    def run(self, names: Any, feeds: dict[str, np.ndarray]) -> Any:
        self.sizes.extend(len(x) for x in feeds.values())
        return self.session.run(names, feeds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)


def test_max_batch_alone_on_a_gpu_none_on_cpu_unless_given() -> None:
    assert batch_shapes(None, 16, on_gpu=True) == (16,)
    assert batch_shapes(None, 12, on_gpu=True) == (12,)
    assert batch_shapes(None, 4, on_gpu=False) == ()
    assert batch_shapes([8, 2, 8], 16, on_gpu=False) == (2, 8)
    assert batch_shapes([], 16, on_gpu=True) == ()  # told: never pad
    assert [shape_for(n, (2, 8)) for n in (1, 2, 3, 8)] == [2, 2, 8, 8]


@pytest.fixture(scope="module")
def own_model() -> Model:
    # not the shared builtin_models: a Scorer sets batch_shapes on the models it is given
    (m,) = load_models(["opennsfw"], [], ["CPUExecutionProvider"])
    return m


def test_any_batch_reaches_the_session_at_a_warmed_size_with_the_same_scores(
    own_model: Model,
) -> None:
    imgs = eval_images()
    plain = Scorer([own_model], ScoringSettings(batch_shapes=[])).score(imgs[:3])
    assert own_model.batch_shapes == ()
    scorer = Scorer([own_model], ScoringSettings(batch_shapes=[2, 4]))
    rec = own_model.session = Recording(own_model.session)  # type: ignore[assignment]
    try:
        scorer.warm_up()
        assert rec.sizes == [2, 4]  # every shape once, before any frame
        rec.sizes.clear()
        padded = scorer.score(imgs[:3])  # 3 -> padded to 4
        assert rec.sizes == [4]
        batch, _ = own_model.prepare(imgs[:3])  # made at its shape: no padding copy
        assert batch.shape[0] == 4 and not batch[3].any()
        for i in range(3):
            assert np.array_equal(batch[i], own_model.preprocess(imgs[i])[0])
        for a, b in zip(plain, padded, strict=True):
            assert a.scores.keys() == b.scores.keys()
            for k in a.scores:
                assert abs(a.scores[k] - b.scores[k]) < 1e-4
        rec.sizes.clear()
        many = (imgs * 4)[:9]  # past the largest: 4 + 4 + 1 -> 2
        assert len(scorer.score(many)) == 9
        assert rec.sizes == [4, 4, 2]
    finally:
        own_model.session = rec.session


def test_the_scoring_service_warms_every_shape_at_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sc = {"models": ["opennsfw"], "batch_shapes": [1, 3], "providers": ["CPUExecutionProvider"]}
    settings = Settings.model_validate({"scoring": sc})
    with caplog.at_level(logging.INFO, logger="scoring.service"):
        scorer = build_scorer(settings)
    assert scorer.image_models[0].batch_shapes == (1, 3)
    assert any("warmed at batch sizes [1, 3]" in r.getMessage() for r in caplog.records)


def test_the_cudnn_search_setting_reaches_the_cuda_provider_and_cpu_still_loads() -> None:
    cuda, cpu = "CUDAExecutionProvider", "CPUExecutionProvider"
    assert with_cuda_options([cuda, cpu], "HEURISTIC") == [
        (cuda, {"cudnn_conv_algo_search": "HEURISTIC"}),
        cpu,
    ]
    assert with_cuda_options([cpu], "EXHAUSTIVE") == [cpu]
    # the defaults name CUDA first: without it (here) the model still loads on the CPU
    (m,) = load_models(["opennsfw"], [], [cuda, cpu], conv_search="EXHAUSTIVE")
    assert m.provider == cpu
