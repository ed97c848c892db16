"""`framewatch score`: frames topic -> models -> scores topic, at least once.

Frames are scored as they are fetched (at most max_in_flight open at once); a frame's Scores
goes out as soon as it and its stream's previous frame are done, and a partition's offsets are
committed up to its first frame whose Scores the broker has not acked. A record or JPEG that
cannot be decoded is dead-lettered (with reason + metric) and committed past.

A frame whose hash (sent by ingest) matches a red-line bank is scored ahead of every queued
frame, with the frames of its stream before it: known-bad media is decided by its hash, and its
block must not wait behind other streams' classifier backlog when the scorer falls behind.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter, Histogram

from framewatch import deadletter, images, kafkaio, records, redisio, scope, taxonomy
from framewatch.evidence import EvidenceStore
from framewatch.failures import Failures, decoder
from framewatch.metrics import RECORDS_IN, RECORDS_OUT, observe_lag, stage_registry
from framewatch.offsets import Offsets
from framewatch.settings import Settings
from framewatch.tasks import cancel_and_wait
from scoring import banks as banks_mod
from scoring import text
from scoring.banks import BankIndex, BankStore, Hit, StreamMatcher
from scoring.batcher import MicroBatcher
from scoring.cache import ScoreCache
from scoring.model import decode_image, load_models
from scoring.scorer import FrameResult, Scored, Scorer
from scoring.shadow import ShadowScoring
from scoring.textgate import TextGate

_REG = stage_registry("scoring")  # this stage's /metrics only (core metrics join there)

log = logging.getLogger(__name__)
STAGE = "scoring"
TEXT_ERRORS = Counter(
    "framewatch_scoring_text_errors_total", "OCR/QR runs that failed", registry=_REG
)
TEXT_PLANS = Counter(
    "framewatch_scoring_text_plans_total",
    "samples by what the text gate did: read (OCR + QR), reuse (the text stayed), skip",
    ["plan"],
    registry=_REG,
)
COMMITS_FAILED = Counter(
    "framewatch_scoring_commits_failed_total",
    "offset commits refused after a rebalance",
    registry=_REG,
)
EVIDENCE_ERRORS = Counter(
    "framewatch_scoring_evidence_errors_total",
    "frames that could not be staged in the evidence store (scoring goes on)",
    registry=_REG,
)
URGENT = Counter(
    "framewatch_scoring_urgent_frames_total",
    "frames scored ahead of the queue: they matched a red-line hash bank, or a later frame of their "
    "stream did (its Scores leaves after theirs)",
    registry=_REG,
)
BATCH_SIZE = Histogram(
    "framewatch_scoring_batch_size",
    "frames per inference batch",
    buckets=(1, 2, 4, 8, 16, 32, 64),
    registry=_REG,
)


# a scored frame: its record, Scores, PDQ, decoded image (None after a cache hit) and bank hits
# (None: not matched yet)
Ready = tuple[records.Frame, records.Scores, str | None, np.ndarray | None, list[Hit] | None]
# a sample for the text thread: the frame, its PDQ hash and its decoded image (None: decode it)
TextJob = tuple[records.Frame, str | None, np.ndarray | None]


def build_scorer(settings: Settings) -> Scorer:
    sc = settings.scoring
    tax = taxonomy.load(settings.taxonomy_file)  # a platform's own categories (custom heads)
    models = load_models(
        sc.models, [Path(d) for d in sc.model_dirs], sc.providers, tax,
        intra_op_threads=sc.intra_op_threads, spin_wait=sc.spin_wait,
        conv_search=sc.cudnn_conv_algo_search,
    )  # fmt: skip
    scorer = Scorer(models, sc)
    took = scorer.warm_up()  # before the first live frame, not in front of it
    if any(m.batch_shapes for m in scorer.image_models):
        log.info("models warmed at batch sizes %s in %.1f s",
                 sorted({s for m in scorer.image_models for s in m.batch_shapes}), took)  # fmt: skip
    return scorer


class ScoringService:
    def __init__(self, settings: Settings, scorer: Scorer | None = None) -> None:
        self.settings = settings
        self.scorer = scorer or build_scorer(settings)
        sc = settings.scoring
        n = self.scorer.inference_threads()
        # a thread for each batch that may run at once: the slots, and the urgent ones beside
        self.executor = ThreadPoolExecutor(n + sc.urgent_batches, thread_name_prefix="infer")
        self.batcher: MicroBatcher = MicroBatcher(
            self._score_batch, self.scorer.max_batch(), sc.max_wait_ms, self.executor, n,
            urgent_slots=sc.urgent_batches,
        )  # fmt: skip
        self.frames_topic = settings.topics.name("frames")
        self.scores_topic = settings.topics.name("scores")
        self.processed = 0
        self._tails: dict[Any, asyncio.Task[None]] = {}  # the last frame of each stream key
        self._running: set[asyncio.Task[None]] = set()
        self._failed: BaseException | None = None
        self._stop = asyncio.Event()
        self.banks = BankStore(settings)
        self.index = BankIndex.empty()
        self.matcher = StreamMatcher(sc.video_window, sc.video_min_frames)
        # (stream, session) -> seq of its latest frame that matched a bank: its frames before
        # that one are urgent too; the least recently matched streams are forgotten
        self._matched: OrderedDict[tuple[str, str | None], int] = OrderedDict()
        self.max_matched_streams = 10_000
        self.bank_reloads = 0
        # the cache client fails fast (no retries): a cache that waits for Redis stalls scoring
        self.redis = redisio.hot_path_client(settings)
        self.ocr = text.Ocr.from_settings(sc, live=True) if sc.text_every else None
        self.text_gate = TextGate(sc.text_every, sc.text_reuse_distance, sc.text_box_change)
        # OCR has its own thread: a read (100s of ms on CPU) never waits in front of a batch.
        # Samples reach it through a lane of one (urgent first): behind a backlog of other
        # streams' text work, a red-line frame's Scores waited 300-400 ms for its turn
        self.text_executor = ThreadPoolExecutor(1, thread_name_prefix="text")
        self.text_lane: MicroBatcher[TextJob, list[records.TextFinding] | None] = MicroBatcher(
            lambda jobs: [self._text(*job) for job in jobs], 1, 0, self.text_executor
        )
        # one text read at a time a stream, so a frame sees the result of the one before it
        self._text_locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock]
        self._text_locks = weakref.WeakValueDictionary()
        self.cache = ScoreCache(settings, self.scorer.cache_tag, self.redis)
        self.evidence = EvidenceStore.from_settings(settings) if settings.evidence.enabled else None
        self.shadow = ShadowScoring.load(settings)  # None when off or not loadable (logged)

    def _score_batch(self, frames: list[records.Frame]) -> list[FrameResult]:
        """Runs in the executor: decode + PDQ (when ingest sent none) + infer one batch."""
        out = self.scorer.score_frames(frames, self.settings.scoring.max_image_pixels)
        BATCH_SIZE.observe(sum(not isinstance(r, images.ImageRejected) for r in out))
        return out

    def _set_index(self, index: BankIndex) -> None:
        self.index = index
        self.bank_reloads += 1
        log.info("hash banks loaded: %d hashes", len(index))

    async def reload_banks(self) -> None:
        loop = asyncio.get_running_loop()
        self._set_index(await loop.run_in_executor(None, self.banks.load))

    async def _watch_banks(self) -> None:
        """Reload the in-memory index whenever a bank changes (pub/sub, no restart)."""
        await banks_mod.watch(self.settings, self.banks, self._set_index)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        consumer = kafkaio.consumer(
            self.settings, self.frames_topic, group_id=self.settings.scoring.group_id
        )
        producer = kafkaio.producer(self.settings)

        self.failures = Failures(
            STAGE,
            self.settings.dead_letters,
            lambda dead: deadletter.produce(producer, self.settings, dead),
        )
        await consumer.start()
        await producer.start()
        self.batcher.start()
        self.text_lane.start()
        await self.reload_banks()
        watcher = asyncio.create_task(self._watch_banks())
        shadow = asyncio.create_task(self.shadow.run(producer)) if self.shadow else None
        log.info("scoring %s -> %s with %s", self.frames_topic, self.scores_topic,
                 self.scorer.model_set)  # fmt: skip
        offsets = Offsets()
        limit = self.settings.scoring.max_in_flight
        try:
            while not self._stop.is_set():
                if self._failed is not None:
                    raise self._failed
                room = limit - offsets.open_count()
                if room <= 0 and self._running:  # max_in_flight open: wait for one to go
                    await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED)
                    continue
                batch = await consumer.getmany(timeout_ms=100, max_records=max(room, 1))
                await observe_lag("scoring", consumer, self.settings.metrics.lag_interval_s)
                if self.shadow and batch:  # the shadow runs only while no live frame waits
                    self.shadow.fetched(sum(len(p) for p in batch.values()))
                offsets.retain(consumer.assignment())
                for tp, part in batch.items():
                    for msg in part:
                        offsets.read(tp, msg.offset)
                        self._start(producer, msg, offsets)
                await self._commit(consumer, offsets)
            await asyncio.gather(*self._running, return_exceptions=True)
            await self._commit(consumer, offsets)
        finally:
            # a broker failure: the frames still open are re-read on restart
            await cancel_and_wait([*self._running, watcher, shadow], what="scoring task")
            if self.shadow:
                self.shadow.close()
            await self.batcher.stop()
            await self.text_lane.stop()
            await producer.stop()
            await consumer.stop()
            await self.redis.aclose()
            self.executor.shutdown(wait=False)

    def _start(self, producer: AIOKafkaProducer, msg: ConsumerRecord, offsets: Offsets) -> None:
        """Score a frame as soon as it is fetched; its Scores goes out once it is scored and
        the stream's previous frame is sent (a stream's Scores keep its frames' order: the
        streams worker drops a seq it has passed), never waiting for other streams' frames."""
        key = (msg.topic, msg.partition, msg.key)
        task = asyncio.create_task(self._one(producer, msg, self._tails.get(key)))
        self._tails[key] = task
        self._running.add(task)
        tp = TopicPartition(msg.topic, msg.partition)

        def done(t: asyncio.Task[None]) -> None:
            self._running.discard(t)
            if self._tails.get(key) is t:
                del self._tails[key]
            if t.cancelled():
                return
            if t.exception() is not None:  # a broker failure: run() raises it, uncommitted
                self._failed = self._failed or t.exception()
                return
            offsets.done(tp, msg.offset)

        task.add_done_callback(done)

    async def _one(
        self, producer: AIOKafkaProducer, msg: ConsumerRecord, before: asyncio.Task[None] | None
    ) -> None:
        ready = await self._score(msg)
        if before is not None:
            await asyncio.wait([before])  # its failure is run()'s to raise, not this frame's
        if ready is None:
            return
        frame, scores, h, img, hits = ready
        if self.settings.scoring.text_every:
            # after the stream's previous frame: the text gate counts and compares a stream's
            # samples in their order, which batches side by side (or a cache hit) may not keep
            scores = await self._with_text(frame, scores, h, img)
        await (await self._emit(producer, frame, scores, h, img if self.shadow else None, hits))
        RECORDS_OUT.labels(stage=STAGE, topic=self.scores_topic).inc()
        self.processed += 1

    async def _commit(self, consumer: Any, offsets: Offsets) -> None:
        """Commit every partition up to its first frame not yet sent (acked by the broker)."""
        assigned = consumer.assignment()
        points = offsets.due(assigned)
        if self.shadow:  # frames sent go to the shadow; it runs only while no live frame waits
            waiting = any((consumer.highwater(tp) or 0) > o
                          for tp, o in offsets.commit_points().items() if tp in assigned)  # fmt: skip
            self.shadow.release(caught_up=not self._running and not waiting)
        if not points:
            return
        try:
            await consumer.commit(points)
            offsets.committed(points)
        except CommitFailedError as exc:
            # the group moved on without us (a network cut longer than the session
            # timeout): the new owner re-reads these frames; their Scores repeat, and
            # the streams worker drops a seq it has seen. Crashing would lose nothing
            # more but stop scoring until someone restarts us.
            COMMITS_FAILED.inc()
            log.warning("offsets not committed (%s); frames will be re-read", exc)

    async def _score(self, msg: ConsumerRecord) -> Ready | None:
        """Decode and score (cache or batch) one frame; None if dead-lettered."""
        RECORDS_IN.labels(stage=STAGE, topic=msg.topic).inc()
        return await self.failures.handle(
            msg, decoder(records.Frame), lambda frame: self._score_frame(msg, frame)
        )

    async def _score_frame(self, msg: ConsumerRecord, frame: records.Frame) -> Ready | None:
        hit = await self.cache.get(frame.tenant, frame.jpeg)
        cached = hit is not None
        # ingest's hash is matched before the models (the stream's window still counts in
        # order, at emit): a frame of known-bad media is scored ahead of the queue. After the
        # cache lookup, so that a frame of its stream still in its own lookup when it matches
        # is then submitted urgent too
        hits = self.index.match(frame.pdq) if frame.pdq else None
        urgent = self._urgent(frame, any(h.bank.role == "red_line" for h in hits or ()))
        # a cache hit decoded nothing: text reading decodes the JPEG if it runs
        result = (*hit, None) if hit is not None else await self.batcher.submit(frame, urgent)
        if isinstance(result, images.ImageRejected):
            await self.failures.dead(msg, "bad_jpeg", str(result))
            return None
        scored, h, q, img = result
        if not cached and not scored.skipped:  # a frame the costly models skipped: not reused
            await self.cache.put(frame.tenant, frame.jpeg, scored, h, q)
        elif frame.pdq:
            h, q = frame.pdq, frame.pdq_quality
        scores = to_scores(frame, scored, h, q)
        if cached:
            scores = scores.model_copy(update={"cached": True, "timings_ms": {}})
        # text reading and the shadow use the decoded image; the hits hold for ingest's hash
        return frame, scores, h, img, hits if h == frame.pdq else None

    def _urgent(self, frame: records.Frame, matched: bool) -> bool:
        """Whether a frame goes ahead of the queue: it matched a red-line bank, or a later frame
        of its stream did (that one's Scores waits for this one's). A match also moves the stream's
        frames already queued ahead."""
        key = (scope.stream(frame), frame.session)
        if matched:
            self._matched[key] = max(self._matched.get(key, -1), frame.seq)
            self._matched.move_to_end(key)
            while len(self._matched) > self.max_matched_streams:
                self._matched.popitem(last=False)
            moved = self.batcher.promote(lambda f: (scope.stream(f), f.session) == key)
            self.text_lane.promote(lambda job: (scope.stream(job[0]), job[0].session) == key)
            URGENT.inc(1 + moved)
            return True
        if self._matched.get(key, -1) > frame.seq:
            URGENT.inc()
            return True
        return False

    async def _emit(
        self, producer: AIOKafkaProducer, frame: records.Frame, scores: records.Scores,
        h: str | None, img: np.ndarray | None = None, hits: list[Hit] | None = None,
    ) -> asyncio.Future[Any]:  # fmt: skip
        """Bank-match (the stream's window needs frames in order) and send; returns the ack.
        ``hits``: this hash's bank hits, when already matched on arrival."""
        if h and hits is None:
            hits = self.index.match(h)
        matches = self.matcher.observe(scope.stream(frame), hits or []) if h else []
        if matches:
            scores = scores.model_copy(update={"hash_matches": matches})
        self._stage(frame, scores)
        if self.shadow:  # the shadow set scores the same image once this record is acked
            self.shadow.stage(frame.jpeg, scores, img)
        return await producer.send(
            self.scores_topic, records.encode(scores), key=scope.stream(frame).encode()
        )

    def _stage(self, frame: records.Frame, scores: records.Scores) -> None:
        """Keep the frame as possible evidence before its scores leave (a decision pins it)."""
        if self.evidence is None or not self.evidence.should_stage(scores):
            return
        try:
            self.evidence.stage(scores, frame.jpeg)
        except OSError as e:  # a full or missing disk costs evidence, never scoring
            EVIDENCE_ERRORS.inc()
            log.warning("frame %s not staged as evidence: %s", frame.frame_id, e)

    async def _with_text(
        self, frame: records.Frame, scores: records.Scores, h: str | None, img: np.ndarray | None
    ) -> records.Scores:
        """Text findings of this sample as the text gate plans them (scoring/textgate.py):
        read, the stream's last findings while its text stays, or none (not read)."""
        key = (frame.tenant, frame.stream_id)
        lock = self._text_locks.get(key)
        if lock is None:
            lock = self._text_locks[key] = asyncio.Lock()
        # a frame of a stream that hit a red-line bank at or after it goes first
        urgent = self._matched.get((scope.stream(frame), frame.session), -1) >= frame.seq
        async with lock:  # one plan at a time a stream: a sample sees the read before it
            try:
                found = await self.text_lane.submit((frame, h, img), urgent)
            except Exception as e:  # OCR trouble must not lose the classifier scores
                log.warning("text/QR failed on %s: %s", frame.frame_id, e)
                TEXT_ERRORS.inc()
                return scores
        if found is None:
            return scores
        spam = text.spam_scores(found, self.settings.scoring.text_score)
        models = dict(scores.models)
        for cat in spam:
            models[cat] = (
                text.QR_MODEL if cat in ("spam.qr_code", "spam.barcode") else text.OCR_MODEL
            )
        return scores.model_copy(update={"text": found, "scores": {**scores.scores, **spam},
                                         "models": models})  # fmt: skip

    def _text(
        self, frame: records.Frame, h: str | None, img: np.ndarray | None
    ) -> list[records.TextFinding] | None:
        """On the text thread: plan, and read when the plan says so (decoding only then)."""
        sc = self.settings.scoring
        ocr = self.ocr
        key = (frame.tenant, frame.stream_id)
        if img is None:  # a cache hit decoded nothing; the gate compares text boxes
            img = decode_image(frame.jpeg, sc.max_image_pixels)
        plan, found = self.text_gate.plan(key, h, img, ocr.recognise if ocr else None)
        TEXT_PLANS.labels(plan=plan).inc()
        if plan != "read":
            return found
        kw = sc.tenant_keywords.get(frame.tenant, [])
        known = self.text_gate.known(key, img)
        found, lines = text.read_lines(img, ocr, kw, sc.ocr_min_confidence, known)
        self.text_gate.remember(key, h, img, found, lines)
        return found


def to_scores(
    frame: records.Frame,
    s: Scored,
    pdq_hex: str | None,
    quality: int | None,
) -> records.Scores:
    return records.Scores(
        frame_id=frame.frame_id,
        stream_id=frame.stream_id,
        account_id=frame.account_id,
        tenant=frame.tenant,
        channel=frame.channel,
        session=frame.session,
        seq=frame.seq,
        captured_at=frame.captured_at,
        scored_at=records.now(),
        scores=s.scores,
        models=s.models,
        detections=s.detections,
        pdq=pdq_hex,
        pdq_quality=quality,
        timings_ms=s.timings_ms,
    )
