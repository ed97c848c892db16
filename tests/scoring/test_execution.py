"""How the scorer executes its models: the parallel decode/preprocessing pool gives exactly the
serial results (a refused JPEG stays at its place in the batch), and the ONNX Runtime thread
settings reach the sessions."""

from __future__ import annotations

import numpy as np
import pytest

from framewatch import images, records
from framewatch.settings.scoring import ScoringSettings
from scoring.model import session_options
from scoring.scorer import Scorer, preprocess_threads
from tests.scoring.conftest import jpeg


def _frames(imgs: list[np.ndarray]) -> list[records.Frame]:
    out = []
    for i, img in enumerate(imgs):
        out.append(records.Frame(
            frame_id=f"f{i}", stream_id="s", account_id="a", seq=i, pts=float(i), captured_at=0.0,
            sample_reason="interval", width=img.shape[1], height=img.shape[0], pdq=None,
            jpeg=jpeg(img) if i != 2 else b"not a jpeg at all",
        ))  # fmt: skip
    return out


def test_parallel_preprocessing_scores_exactly_as_serial(builtin_models, safe_frames) -> None:  # type: ignore[no-untyped-def]
    frames = _frames(safe_frames)
    serial = Scorer(builtin_models, ScoringSettings(preprocess_threads=1))
    assert serial.pool is None
    want = serial.score_frames(frames, 10_000_000)
    parallel = Scorer(builtin_models, ScoringSettings(preprocess_threads=3))
    assert parallel.pool is not None
    got = parallel.score_frames(frames, 10_000_000)
    assert len(got) == len(want) == len(frames)
    # the bad JPEG is refused at its own position, the others are scored
    assert isinstance(got[2], images.ImageRejected) and isinstance(want[2], images.ImageRejected)
    for g, w in zip(got, want, strict=True):
        if isinstance(w, images.ImageRejected):
            continue
        assert not isinstance(g, images.ImageRejected)
        assert g[0].per_model == w[0].per_model and g[0].scores == w[0].scores
        assert (g[1], g[2]) == (w[1], w[2])  # PDQ computed here: ingest sent none
        assert np.array_equal(g[3], w[3])


def test_session_options_follow_the_thread_settings() -> None:
    opts = session_options(intra_op_threads=1, spin_wait=False)
    assert opts.intra_op_num_threads == 1
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    default = session_options()
    assert default.intra_op_num_threads == 0  # ORT: one per physical core
    with pytest.raises(RuntimeError):  # not set: ORT's default (spinning)
        default.get_session_config_entry("session.intra_op.allow_spinning")
    # the scorer service turns spinning off unless told otherwise
    assert ScoringSettings().spin_wait is False


def test_on_cpu_small_batches_run_side_by_side_unless_told_otherwise(builtin_models) -> None:  # type: ignore[no-untyped-def]
    """On CPU a scorer runs one single-threaded batch of at most 4 frames a core (cheaper a
    frame than one batch over every core, a quarter of the memory of a batch of 16); the
    settings override both."""
    import os

    cpu = Scorer(builtin_models, ScoringSettings())
    assert not cpu.on_gpu
    assert (cpu.max_batch(), cpu.inference_threads()) == (4, os.cpu_count())
    assert ScoringSettings().intra_op_threads == 1
    told = Scorer(builtin_models, ScoringSettings(max_batch=32, inference_threads=3))
    assert (told.max_batch(), told.inference_threads()) == (32, 3)


def test_on_a_gpu_every_core_prepares_batches(builtin_models) -> None:  # type: ignore[no-untyped-def]
    """On a GPU the CPU's decode and preprocessing feed the models: a batch a core in flight
    (on an H200 box 2 threads fed 102-114 frames/s, 16 threads 304-317), batches of 16."""
    import os

    gpu = Scorer(builtin_models, ScoringSettings())
    gpu.on_gpu = True  # what a CUDA session sets; no GPU here
    assert (gpu.max_batch(), gpu.inference_threads()) == (16, os.cpu_count())


def test_preprocessing_spreads_over_the_cores_on_a_gpu_only(builtin_models) -> None:  # type: ignore[no-untyped-def]
    """On a GPU the inference threads mostly wait for the device, and a preprocessing pool a
    core fed it more (an H200 box: 349-351 against 326-331 frames/s); on CPU the inference
    threads already keep every core busy, and a batch prepares its own frames."""
    import os

    assert preprocess_threads(None, on_gpu=True) == os.cpu_count()
    assert preprocess_threads(None, on_gpu=False) == 1
    assert preprocess_threads(0, on_gpu=False) == os.cpu_count()
    assert preprocess_threads(3, on_gpu=True) == 3
    assert Scorer(builtin_models, ScoringSettings()).pool is None  # CPU here
