"""A model set in shadow on live frames (``scoring.shadow_models``): scores-shadow, nothing more.

Before a model set goes live, it can score the real traffic next to the live one. Its Scores go
to the ``scores_shadow`` topic only; nothing consumes that topic to act, and
``framewatch replay --scores-topic scores_shadow`` tells what the set would change.

Live scoring must not notice it, so:

- the shadow models take the image the live batch decoded (one decode a frame), and are handed
  a frame only once its live Scores record is acknowledged by the broker;
- they run in a process of their own (:mod:`scoring.shadow_process`) at the lowest CPU
  priority (``scoring.shadow_nice``), so they share neither the scorer's GIL nor, when live
  scoring wants it, the CPU;
- they start a batch only while the live consumer is caught up (no live batch in flight and no
  frame waiting in the partitions the last fetch read, by the fetch's high watermark), and
  check again before every batch (``scoring.shadow_max_batch``, 1 frame), so a live batch that
  arrives meanwhile overlaps at most one shadow frame;
- while live scoring is behind, or the shadow is slower than the traffic, frames past
  ``scoring.shadow_max_pending`` are not shadow-scored and are counted
  (``framewatch_scoring_shadow_dropped_total{reason="behind"}``). A dropped frame costs the
  comparison one frame (replay compares the frames both topics hold); waiting for it would
  cost live decisions their latency;
- a shadow model that fails to load turns the shadow off (an error naming the model and what to
  do, gauge ``framewatch_scoring_shadow_active`` 0); one that throws costs that batch's shadow
  records (counted per model, logged), never a live one.

Offsets are the live path's: a shadow record is best effort, not at-least-once (a restart loses
the frames still waiting for the shadow).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge

from framewatch import records, scope
from framewatch.metrics import RECORDS_OUT, stage_registry
from framewatch.settings import Settings
from scoring import text
from scoring.errors import ModelError
from scoring.scorer import Scored
from scoring.shadow_process import ShadowModelError, ShadowProcess, ShadowProcessDied

_REG = stage_registry("scoring")
log = logging.getLogger(__name__)

DROPPED = Counter(
    "framewatch_scoring_shadow_dropped_total",
    "frames the shadow model set did not score: behind (live scoring had a backlog or the "
    "shadow was slower than the traffic), model_error (a shadow model threw), send_error",
    ["reason"],
    registry=_REG,
)
ERRORS = Counter(
    "framewatch_scoring_shadow_errors_total",
    "shadow batches a shadow model threw on (live scoring goes on)",
    ["model"],
    registry=_REG,
)
ACTIVE = Gauge(
    "framewatch_scoring_shadow_active",
    "1 while a shadow model set scores live frames; 0 when it is off or failed to load",
    registry=_REG,
)
_LOG_EVERY_S = 60.0  # a model that throws on every batch logs once a minute, with its count


def shadow_record(live: records.Scores, scored: Scored) -> records.Scores:
    """The live record with the models' part replaced by the shadow set's.

    Hash matches and text/QR findings are not the models' doing: they stay, so a replay of the
    shadow topic differs from the live one only where the models do."""
    keep = {text.QR_MODEL, text.OCR_MODEL}
    spam = {c: v for c, v in live.scores.items() if live.models.get(c) in keep}
    return live.model_copy(
        update={
            "scores": {**scored.scores, **spam},
            "models": {**scored.models, **{c: live.models[c] for c in spam}},
            "detections": list(scored.detections),
            "timings_ms": dict(scored.timings_ms),
            "scored_at": records.now(),
            "cached": False,
        }
    )


@dataclass
class _Item:
    jpeg: bytes
    live: records.Scores
    img: np.ndarray | None  # the live batch's decoded image; None: the live scores were cached


class ShadowScoring:
    """In the scorer: the frames waiting for the shadow set, the gate that keeps it out of live
    scoring's way, and the loop that sends its records (the models run in ShadowProcess)."""

    def __init__(self, settings: Settings, process: ShadowProcess, model_set: str) -> None:
        self.settings = settings
        self.model_set = model_set
        self.topic = settings.topics.name("scores_shadow")
        self.written = 0
        self._staged: list[_Item] = []
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(settings.scoring.shadow_max_pending)
        self._live_idle = asyncio.Event()
        self._live_idle.set()
        self._process = process
        self._waiter = ThreadPoolExecutor(1, thread_name_prefix="shadow")  # waits on its answers
        self._broken = False
        self._last_log: dict[str, float] = {}
        self.failures: dict[str, int] = {}  # model ref -> failed batches

    @classmethod
    def load(cls, settings: Settings) -> ShadowScoring | None:
        """The shadow set of ``scoring.shadow_models``; None when unset, or when a model cannot
        be loaded (logged as an error naming it: live scoring starts without the shadow)."""
        sc = settings.scoring
        ACTIVE.set(0)
        if not sc.shadow_models:
            return None
        dirs = [Path(d) for d in sc.model_dirs]
        process = None
        try:
            process = ShadowProcess(sc.shadow_nice)
            model_set = process.call("load", sc.shadow_models, dirs, sc.providers, sc)
        except Exception as e:  # ModelError names the model and field; anything else, say so
            why = str(e) if isinstance(e, ModelError) else f"{type(e).__name__}: {e}"
            log.error(
                "shadow model set %s NOT started, live scoring goes on without it: %s. Fix "
                "scoring.shadow_models (FRAMEWATCH_SCORING__SHADOW_MODELS) or that manifest, "
                "then restart the scorer", sc.shadow_models, why,
            )  # fmt: skip
            if process is not None:
                process.close()
            return None
        log.info("shadow model set %s scores live frames into %s", model_set,
                 settings.topics.name("scores_shadow"))  # fmt: skip
        ACTIVE.set(1)
        for reason in ("behind", "model_error", "send_error"):  # at 0 from the start
            DROPPED.labels(reason=reason)
        return cls(settings, process, model_set)

    @property
    def active(self) -> bool:
        """False once the shadow process died (the shadow is off until a restart)."""
        return not self._broken

    @property
    def pid(self) -> int:
        """The shadow models' process."""
        return self._process.pid

    # -- called by the live loop -----------------------------------------------------------

    def fetched(self, frames: int) -> None:
        """The live consumer fetched: frames to score (start no shadow batch until they are
        sent), or none (nothing waits: the shadow may run)."""
        if frames:
            self._live_idle.clear()
        else:
            self.release(caught_up=True)

    def stage(self, jpeg: bytes, live: records.Scores, img: np.ndarray | None) -> None:
        """Remember a frame whose live Scores is being sent (released once it is acked)."""
        self._staged.append(_Item(jpeg, live, img))

    def release(self, caught_up: bool) -> None:
        """The live batch is acked: queue its frames for the shadow (dropping, counted, what
        does not fit); the shadow may run again when live scoring has no backlog."""
        for item in self._staged:
            if self._broken:
                DROPPED.labels(reason="model_error").inc()
                continue
            try:
                self._queue.put_nowait(item)
            except asyncio.QueueFull:
                DROPPED.labels(reason="behind").inc()
        self._staged.clear()
        if caught_up:
            self._live_idle.set()

    # -- the shadow's own loop ---------------------------------------------------------------

    async def run(self, producer: AIOKafkaProducer) -> None:
        """Score queued frames in batches on the shadow thread and send them; never raises
        for a model or a send (both counted and logged)."""
        loop = asyncio.get_running_loop()
        max_batch = self.settings.scoring.shadow_max_batch
        while True:
            batch = [await self._queue.get()]
            await self._live_idle.wait()
            while len(batch) < max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            sc = self.settings.scoring
            try:
                scored = await loop.run_in_executor(
                    self._waiter, self._process.call, "score",
                    [it.jpeg if it.img is None else it.img for it in batch],
                    [it.live.pdq_quality for it in batch], [it.live.seq for it in batch],
                    sc.max_image_pixels,
                )  # fmt: skip
            except ShadowProcessDied as e:  # a model crashed it, or the kernel killed it
                self._broken = True
                ACTIVE.set(0)
                DROPPED.labels(reason="model_error").inc(len(batch) + self._queue.qsize())
                log.error("%s: the shadow is off until the scorer restarts; live scoring goes "
                          "on", e)  # fmt: skip
                return
            except Exception as e:  # ShadowModelError names the model
                self._failed(e, len(batch))
                continue
            out = [shadow_record(it.live, s) for it, s in zip(batch, scored, strict=True)]
            try:
                acks = [await producer.send(self.topic, records.encode(r),
                                            key=scope.stream(r).encode()) for r in out]  # fmt: skip
                await asyncio.gather(*acks)
            except KafkaError as e:
                DROPPED.labels(reason="send_error").inc(len(out))
                log.warning("shadow scores of %d frames not sent: %s", len(out), e)
                continue
            RECORDS_OUT.labels(stage="scoring", topic=self.topic).inc(len(out))
            self.written += len(out)

    def _failed(self, e: Exception, frames: int) -> None:
        ref = e.ref if isinstance(e, ShadowModelError) else "-"
        ERRORS.labels(model=ref).inc()
        self.failures[ref] = self.failures.get(ref, 0) + 1
        DROPPED.labels(reason="model_error").inc(frames)
        now = time.monotonic()
        if now - self._last_log.get(ref, -_LOG_EVERY_S) >= _LOG_EVERY_S:
            self._last_log[ref] = now
            log.error(
                "%s; %d frames not shadow-scored (%d failed batches of this model so far; live "
                "scoring goes on). Fix or remove it from scoring.shadow_models",
                e if ref != "-" else f"shadow scoring failed: {e!r}", frames,
                self.failures[ref],
            )  # fmt: skip

    def close(self) -> None:
        ACTIVE.set(0)
        self._waiter.shutdown(wait=False, cancel_futures=True)
        self._process.close()
