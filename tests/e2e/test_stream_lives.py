"""A stream that comes back under the same id is moderated like a new life, and a scorer replay
counts nothing twice (issue 14.1), on the real pieces: ingest decoding real video files, the
scoring service matching a real PDQ video bank in Redis, and the streams worker on Kafka.

The scorer runs hash-bank only (no classifier models): the bank is what decides red lines here,
and the classifiers' scores on the safe videos are not what this test is about.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.testdata import video
from framewatch import records, redisio, scope
from framewatch.records import Decision, Enforcement, Frame
from framewatch.settings import Settings
from ingest.engine import StreamMeta
from ingest.position import Position, PositionStore
from ingest.runner import StreamIngester
from scoring.banks import BankStore, video_hashes
from scoring.scorer import Scorer
from scoring.service import ScoringService
from streams.inspect import table_snapshot
from tests.streams.helpers import scores
from tests.streams.worker import Worker, collect, produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

TENANT, STREAM, ACCOUNT = "t1", "cam-7", "acct-42"
RED = "chair-orig-22-sd-bar.mp4"  # banked as red line
SAFE = "pattern-hd-no-bar.mp4"


@pytest.fixture
def settings(make_settings) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(
        # the replay below re-scores the whole frames topic, both lives: remember all of it
        streams={"session_timeout_s": 8, "replay_window": 256},
        scoring={"models": [], "text_every": 0, "max_wait_ms": 5},
    )


@pytest.fixture
def worker(settings: Settings, kafka_topics: object, tmp_path: Path) -> Iterator[Worker]:
    w = Worker(settings, tmp_path / "faust", tmp_path / "worker.log")
    w.start()
    yield w
    w.stop()
    print((tmp_path / "worker.log").read_text()[-3000:])


def bank_red_line_video(settings: Settings) -> None:
    store = BankStore(settings)
    store.create("known-bad", "red_line", "known_bad.csam_bank")
    sc = settings.scoring
    hashes = [
        h
        for _, h in video_hashes(
            video(RED), sc.bank_video_interval_s, sc.bank_min_quality, sc.bank_crop_variants
        )
    ]
    store.add("known-bad", RED, hashes, "video")
    store.notify()


async def ingest(settings: Settings, name: str, fps: float) -> int:
    """One ingester's life of the stream; how many frames it sent."""
    meta = StreamMeta(STREAM, ACCOUNT, TENANT)
    summary = await StreamIngester(settings, str(video(name)), meta, fps=fps).run()
    assert summary.error is None and summary.sent > 0
    return summary.sent


async def read_frames(settings: Settings, want: int) -> list[Frame]:
    out = [f for f in await collect(settings, "frames", want=want, settle=0.5)]
    return [f for f in out if isinstance(f, Frame)]


async def scorer(settings: Settings, group: str) -> tuple[ScoringService, asyncio.Task[None]]:
    s = settings.model_copy(
        update={"scoring": settings.scoring.model_copy(update={"group_id": group})}
    )
    svc = ScoringService(s, Scorer([]))
    return svc, asyncio.create_task(svc.run())


async def stop(svc: ScoringService, task: asyncio.Task[None]) -> None:
    svc.stop()
    await asyncio.wait_for(task, 30)


async def processed(settings: Settings, frame_id: str, worker: Worker) -> None:
    """Wait until the worker's state for the stream has seen ``frame_id``."""
    for _ in range(240):
        assert worker.proc is not None and worker.proc.poll() is None, "the worker exited"
        states = await table_snapshot(settings, settings.topics.changelog("stream-state"))
        if frame_id in (states.get(scope.key(TENANT, STREAM)) or {}).get("recent", []):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"the worker never processed {frame_id}")


async def test_a_stream_back_under_its_id_is_moderated_and_a_replay_counts_once(
    settings: Settings, worker: Worker
) -> None:
    bank_red_line_video(settings)
    svc, task = await scorer(settings, "framewatch-scorer")
    try:
        # life 1: a safe stream, many samples
        n1 = await ingest(settings, SAFE, fps=6)
        assert n1 >= 15
        # the same stream id comes back from an ingester that lost the position (another
        # host, Redis flushed): seq starts at 0 again, far below what the worker saw
        r = redisio.sync_client(settings)
        key = PositionStore(settings, redisio.async_client(settings)).key(TENANT, STREAM)
        saved = Position.from_json(r.get(key))  # type: ignore[arg-type]
        assert saved.seq == n1  # the position after life 1's last acknowledged frame
        r.delete(key)
        n2 = await ingest(settings, RED, fps=1)
        frames = await read_frames(settings, n1 + n2)
        life1, life2 = frames[:n1], frames[n1:]
        assert [f.seq for f in life2][:3] == [0, 1, 2] and life1[-1].seq >= 14
        assert {f.session for f in life1} == {saved.session} != {life2[0].session}

        decisions = [
            d
            for d in await collect(settings, "decisions", want=1, worker=worker, timeout=120)
            if isinstance(d, Decision)
        ]
        assert [(d.action, d.red_line, d.tenant) for d in decisions] == [("block", True, TENANT)]
        assert decisions[0].first_frame_id in {f.frame_id for f in life2}
        enf = [
            e for e in await collect(settings, "enforcement", want=1) if isinstance(e, Enforcement)
        ]
        assert len(enf) == 1
    finally:
        await stop(svc, task)

    # a scorer replay: a second scorer group re-scores every frame of both lives, producing
    # scores records with the same frame ids; then one new frame marks the end of the replay
    svc, task = await scorer(settings, "framewatch-scorer-replay")
    try:
        await collect(settings, "scores", want=2 * (n1 + n2), timeout=120, settle=0.5)
    finally:
        await stop(svc, task)
    marker = scores(0, STREAM, account=ACCOUNT, tenant=TENANT, t0=records.now()).model_copy(
        update={"frame_id": "end-of-replay", "session": life2[0].session}
    )
    await produce(settings, [(scope.stream(marker), records.encode(marker))])
    await processed(settings, "end-of-replay", worker)

    again = [
        d
        for d in await collect(settings, "decisions", want=2, timeout=3)
        if isinstance(d, Decision)
    ]
    assert [d.decision_id for d in again] == [decisions[0].decision_id]  # no duplicate at all
    assert len([e for e in await collect(settings, "enforcement", want=2, timeout=3)]) == 1
    ledgers = await table_snapshot(settings, settings.topics.changelog("account-ledger"))
    strikes = ledgers[scope.key(TENANT, ACCOUNT)]["strikes"]
    assert [s["decision_id"] for s in strikes] == [decisions[0].decision_id]
