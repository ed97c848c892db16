"""A model set in shadow on live frames (``scoring.shadow_models``): scores-shadow, nothing more.

Before a model set goes live, it can score the real traffic next to the live one. Its Scores go
to the ``scores_shadow`` topic only; nothing consumes that topic to act, and
``framewatch replay --scores-topic scores_shadow`` tells what the set would change.

Live scoring must not notice it, so:

- the shadow models take the image the live batch decoded (one decode a frame), and are handed
  a frame only once its live Scores record is acknowledged by the broker;
- they run on their own thread at the lowest CPU priority (``scoring.shadow_nice``; their
  onnxruntime threads are created from it and inherit it), and only while the live consumer is
  caught up (no live batch in flight and no frame waiting in the partitions the last fetch
  read, by the fetch's high watermark): while live scoring is behind, or the shadow is
  slower than the traffic, frames past ``scoring.shadow_max_pending`` are not shadow-scored and
  are counted (``framewatch_scoring_shadow_dropped_total{reason="behind"}``). A dropped frame
  costs the comparison one frame (replay compares the frames both topics hold); waiting for it
  would cost live decisions their latency. At most one shadow batch
  (``scoring.shadow_max_batch``, 1 frame) overlaps a live batch;
- a shadow model that fails to load turns the shadow off (an error naming the model and what to
  do, gauge ``framewatch_scoring_shadow_active`` 0); one that throws costs that batch's shadow
  records (counted per model, logged), never a live one.

Offsets are the live path's: a shadow record is best effort, not at-least-once (a restart loses
the frames still waiting for the shadow).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge

from framewatch import records, scope
from framewatch.metrics import RECORDS_OUT, stage_registry
from framewatch.settings import Settings
from scoring import text
from scoring.errors import ModelError
from scoring.model import Model, decode_image, load_models
from scoring.scorer import Scored, Scorer

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


class ShadowModelError(ModelError):
    """A shadow model threw at inference (the message names it)."""

    def __init__(self, ref: str, cause: BaseException) -> None:
        super().__init__(f"shadow model {ref} failed: {cause!r}")
        self.ref = ref


class _Guarded:
    """A loaded model whose failures name it (the scorer runs several models a batch)."""

    def __init__(self, model: Model) -> None:
        self._model = model
        self.ref = model.ref

    def run(self, images: list[np.ndarray]) -> Any:
        try:
            return self._model.run(images)
        except Exception as e:
            raise ShadowModelError(self.ref, e) from e

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


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
    """The shadow set's queue, thread and producer loop (one per scoring process)."""

    def __init__(
        self, settings: Settings, scorer: Scorer, executor: ThreadPoolExecutor | None = None
    ) -> None:
        self.settings = settings
        self.scorer = scorer
        self.topic = settings.topics.name("scores_shadow")
        self.written = 0
        self._staged: list[_Item] = []
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(settings.scoring.shadow_max_pending)
        self._live_idle = asyncio.Event()
        self._live_idle.set()
        self._executor = executor or _low_priority_thread(settings.scoring.shadow_nice)
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
        executor = _low_priority_thread(sc.shadow_nice)
        dirs = [Path(d) for d in sc.model_dirs]
        try:  # sessions made on the shadow thread: their thread pools inherit its priority
            models = executor.submit(load_models, sc.shadow_models, dirs, sc.providers).result()
        except Exception as e:  # ModelError names the model and field; anything else, say so
            why = str(e) if isinstance(e, ModelError) else f"{type(e).__name__}: {e}"
            log.error(
                "shadow model set %s NOT started, live scoring goes on without it: %s. Fix "
                "scoring.shadow_models (FRAMEWATCH_SCORING__SHADOW_MODELS) or that manifest, "
                "then restart the scorer", sc.shadow_models, why,
            )  # fmt: skip
            executor.shutdown(wait=False)
            return None
        if not models:  # every one optional and missing (each logged by load_models)
            log.error("shadow model set %s NOT started: none of its models is installed",
                      sc.shadow_models)  # fmt: skip
            executor.shutdown(wait=False)
            return None
        scorer = Scorer(cast(list[Model], [_Guarded(m) for m in models]), sc)
        log.info("shadow model set %s scores live frames into %s", scorer.model_set,
                 settings.topics.name("scores_shadow"))  # fmt: skip
        ACTIVE.set(1)
        for reason in ("behind", "model_error", "send_error"):  # at 0 from the start
            DROPPED.labels(reason=reason)
        return cls(settings, scorer, executor)

    # -- called by the live loop -----------------------------------------------------------

    def live_busy(self) -> None:
        """A live batch was fetched: start no shadow batch until it is sent."""
        self._live_idle.clear()

    def stage(self, jpeg: bytes, live: records.Scores, img: np.ndarray | None) -> None:
        """Remember a frame whose live Scores is being sent (released once it is acked)."""
        self._staged.append(_Item(jpeg, live, img))

    def release(self, caught_up: bool) -> None:
        """The live batch is acked: queue its frames for the shadow (dropping, counted, what
        does not fit); the shadow may run again when live scoring has no backlog."""
        for item in self._staged:
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
            try:
                out = await loop.run_in_executor(self._executor, self._score, batch)
            except Exception as e:  # ShadowModelError names the model
                self._failed(e, len(batch))
                continue
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

    def _score(self, batch: list[_Item]) -> list[records.Scores]:
        """On the shadow thread: the shadow set on the live images (a cached frame, which the
        live path did not decode, is decoded here), fused and gated as live."""
        max_px = self.settings.scoring.max_image_pixels
        imgs = [it.img if it.img is not None else decode_image(it.jpeg, max_px) for it in batch]
        scored = self.scorer.score(
            imgs, [it.live.pdq_quality for it in batch], [it.live.seq for it in batch]
        )
        return [shadow_record(it.live, s) for it, s in zip(batch, scored, strict=True)]

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
        self._executor.shutdown(wait=False, cancel_futures=True)


def _low_priority_thread(nice: int) -> ThreadPoolExecutor:
    """One worker thread at ``nice`` (Linux niceness is per thread; threads it starts, such as
    onnxruntime's pools, inherit it). Raising niceness needs no privilege."""

    def lower() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        except OSError as e:  # not Linux, or a sandbox that refuses: run at normal priority
            log.warning("shadow thread priority not lowered (%s)", e)

    return ThreadPoolExecutor(1, thread_name_prefix="shadow", initializer=lower)
