"""Run one source into the frames topic: decode thread -> buffer -> Kafka, with reconnects.

The decode/sample/hash work runs in a thread so the event loop keeps producing; frames are sent
in order (one partition per stream, idempotent producer), so order per stream is kept. A live
source's buffer drops its oldest sample when full, a file's waits (ingest/buffer.py); pulls
connect only through the egress guard (ingest/egress.py); the source's state is explicit
(ingest/state.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import redis.asyncio as aioredis
import tenacity
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from framewatch import deadletter, kafkaio, records, redisio, scope
from framewatch.netguard import UrlRefusedError
from framewatch.redact import mask_url
from framewatch.settings import Settings
from framewatch.tasks import cancel_and_wait
from ingest import egress
from ingest.buffer import BufferStrategy, FrameBuffer
from ingest.engine import Counts, SampleEngine, StreamMeta
from ingest.errors import IngestError, SourceError, SourceTimeoutError
from ingest.metrics import (
    BROKER_WAITS,
    HOT_POLL_ERRORS,
    RECONNECTS,
    SOURCE_ERRORS,
    frame_sent,
)
from ingest.position import Position, PositionStore
from ingest.source import DecodedFrame, VideoSource, is_live
from ingest.state import SourceState, SourceStatus, TransitionError

log = logging.getLogger(__name__)

_DONE = object()
# Redis calls for hints and positions fail fast: they must not hold up frames while it is down
REDIS_TIMEOUT_S = 2.0


class _Ended(Exception):
    """A live stream ended cleanly: reconnect (``ingest.reconnect_on_end``)."""


@dataclass
class _Reconnects:
    """Reconnects since the last frame: the backoff and the give-up count restart at a frame.
    ``attempt_number`` (waits so far) is the field tenacity's wait strategies read."""

    attempt_number: int = 0
    failures: int = 0  # connections that failed (a clean end is not a failure)
    connected_once: bool = False
    started: float = field(default_factory=time.monotonic)

    def frame(self) -> None:
        self.attempt_number = self.failures = 0
        self.connected_once = True


@dataclass
class Summary:
    stream_id: str
    source: str
    read: int
    sampled: int
    suppressed: int
    sent: int
    decode_errors: int
    reconnects: int
    dropped: int
    state: str
    by_reason: dict[str, int]
    elapsed_s: float
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class StreamIngester:
    """One source -> frames topic. ``await run()``; ``stop()`` ends it from anywhere."""

    def __init__(
        self,
        settings: Settings,
        source: str,
        meta: StreamMeta,
        *,
        fps: float | None = None,
        keyframes_only: bool = False,
        realtime: bool = False,
        producer: AIOKafkaProducer | None = None,
        on_progress: Callable[[Counts, float], None] | None = None,
        on_end: Callable[[], None] | None = None,
        source_options: dict[str, str] | None = None,
        opened: VideoSource | None = None,
        start_at: float | None = None,
    ) -> None:
        self.settings = settings
        self.source = source
        self.meta = meta
        self.keyframes_only = keyframes_only
        self.realtime = realtime
        self.engine = SampleEngine(settings, meta, fps=fps, keyframes_only=keyframes_only)
        self._producer = producer
        self._own_producer = producer is None
        self.on_progress = on_progress
        # called once the stream is over (ended, failed or stopped), before run()'s clean-up:
        # the CLI arms its exit watchdog there, so a stuck clean-up cannot hold the process
        self.on_end = on_end
        self.source_options = source_options
        # a source accepted by a listener: read once, never reconnect, no SSRF check
        self.opened = opened
        # a Unix time to read the first frame at, once Kafka, Redis and the position are ready
        # (`ingest --start-at`: streams already live start together, their set-up done before)
        self.start_at = start_at
        self._stop = threading.Event()
        self.last_lag = 0.0
        self._sent: Position | None = None  # position after the last frame Kafka acked
        self.label = mask_url(source)  # logs, errors and dead letters never show credentials
        self.status = SourceStatus(meta.stream_id, meta.tenant)
        self.buffer: FrameBuffer | None = None
        self._egress: egress.Egress | None = None
        self._last_read = time.monotonic()

    def stop(self) -> None:
        self._stop.set()

    # ---- decode thread -------------------------------------------------------------------
    def _connection(self) -> VideoSource:
        cfg = self.settings.ingest
        if self.opened is not None:
            return self.opened
        plan = self._egress.plan() if self._egress else None
        return VideoSource(
            plan.url if plan else self.source,
            keyframes_only=self.keyframes_only,
            realtime=self.realtime,
            open_timeout_s=cfg.open_timeout_s,
            read_timeout_s=cfg.read_timeout_s,
            threads=cfg.decode_threads,
            skip_nonref=cfg.decode_skip_nonref,
            skip_loop_filter=cfg.keyframe_skip_loop_filter,
            batch_s=cfg.decode_batch_s,
            sample_fps=max(self.engine.base_fps, cfg.hot_fps),
            options={**(plan.options if plan else {}), **(self.source_options or {})},
            label=self.label,
        )

    def _refused(self) -> None:
        """End the pull for good when the guard refused one of its connections."""
        why = self._egress.refused() if self._egress else None
        if why is not None:
            raise SourceError("url_refused", f"{self.label}: {why}")

    def _live_frames(self, frames: Iterator[DecodedFrame]) -> Iterator[DecodedFrame]:
        for f in frames:
            self._last_read = time.monotonic()
            if self.status.state is not SourceState.LIVE:
                self.status.to(SourceState.LIVE)
            yield f

    def _decode(self, buffer: FrameBuffer) -> None:
        """Decode until the source ends, reconnecting a live pull with exponential backoff
        (tenacity): the backoff and the give-up count restart whenever a frame comes."""
        cfg = self.settings.ingest
        live = is_live(self.source) and self.opened is None
        run = _Reconnects()
        backoff = tenacity.wait_exponential(
            multiplier=cfg.reconnect_initial_s, max=cfg.reconnect_max_s
        )

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, _Ended):
                return True
            return isinstance(exc, SourceError) and live and self._retryable_cause(exc, run)

        def give_up(_rs: tenacity.RetryCallState) -> bool:
            limit = cfg.reconnect_max_attempts
            return self._stop.is_set() or bool(limit and run.failures > limit)

        def reconnecting(rs: tenacity.RetryCallState) -> None:
            exc = rs.outcome.exception() if rs.outcome else None
            if isinstance(exc, _Ended):
                log.warning("%s: stream ended; reconnecting", self.label)
            else:
                wait = rs.next_action.sleep if rs.next_action else 0.0
                log.warning("%s: %s; reconnecting in %.1fs", self.label, exc, wait)
            self.status.to(SourceState.RECONNECTING)

        try:
            for attempt in tenacity.Retrying(
                retry=tenacity.retry_if_exception(retryable),
                wait=lambda _rs: backoff(run),  # type: ignore[arg-type]
                stop=give_up,
                sleep=self._stop.wait,  # stop() cuts a wait short
                before_sleep=reconnecting,
                retry_error_callback=lambda rs: (
                    None if self._stop.is_set() else rs.outcome.result()
                ),  # type: ignore[union-attr]
            ):
                with attempt:
                    self._connect(buffer, run, live, attempt.retry_state.attempt_number)
        except BaseException as exc:  # handed to the event loop, which reports it
            buffer.put_control(exc)
        finally:
            buffer.put_control(_DONE)

    @staticmethod
    def _retryable_cause(exc: SourceError, run: _Reconnects) -> bool:
        """A failure worth another connection: not a refused URL (the egress guard), not an
        unsupported protocol, and not a source that never started before its open timeout."""
        never_started = isinstance(exc, SourceTimeoutError) and not run.connected_once
        return exc.reason not in ("url_refused", "unsupported_protocol") and not never_started

    def _connect(self, buffer: FrameBuffer, run: _Reconnects, live: bool, attempt: int) -> None:
        """One connection, read until it ends. Returns when the source is done for good;
        raises ``_Ended`` (a live stream ended cleanly) or SourceError to reconnect or give up."""
        cfg = self.settings.ingest
        if self._stop.is_set():
            return
        if attempt > 1:
            RECONNECTS.inc()
            if live:  # every reconnect is checked again (run() did the first)
                try:
                    egress.check(self.source, allow_private=cfg.allow_private_urls)
                except UrlRefusedError as exc:
                    raise SourceError("url_refused", f"{self.label}: {exc}") from None
        src = self._connection()
        try:
            with src:
                if run.connected_once:
                    self.engine.new_connection()
                for frame in self.engine.process(
                    self._live_frames(src.frames(wanted=self.engine.wants))
                ):
                    run.frame()
                    buffer.put(frame)
                    if self._stop.is_set():
                        break
        except SourceError as exc:
            self.engine.counts.decode_errors += src.decode_errors
            self._refused()
            run.attempt_number += 1
            run.failures += 1
            late = time.monotonic() - run.started > cfg.open_timeout_s
            if late and live and not run.connected_once and self._retryable_cause(exc, run):
                raise SourceTimeoutError(
                    f"{self.label}: the stream did not start within "
                    f"{cfg.open_timeout_s:g}s ({exc}); check that it is publishing"
                ) from None
            raise
        self.engine.counts.decode_errors += src.decode_errors
        self._refused()
        if live and cfg.reconnect_on_end and not self._stop.is_set():
            run.attempt_number += 1
            raise _Ended()

    # ---- event loop ----------------------------------------------------------------------
    async def _poll_hot(self, client: aioredis.Redis) -> None:
        key = redisio.key(self.settings, "hot", scope.key(self.meta.tenant, self.meta.stream_id))
        while not self._stop.is_set():
            try:
                self.engine.set_hot(bool(await client.exists(key)))
            except Exception as exc:  # Redis down must not stop ingest
                HOT_POLL_ERRORS.inc()
                log.debug("hot flag poll failed: %s", exc)
            await asyncio.sleep(self.settings.ingest.hot_poll_s)

    async def _resume(self, store: PositionStore) -> None:
        """Continue the stream's saved position: the same life for a pull restarted within
        ``resume_window_s`` (ingest or its supervisor restarted, the broadcast went on); a
        new life for a publisher that came back to the listener, a file, or a stale position."""
        m = self.meta
        pos = await store.load(m.tenant, m.stream_id)
        pull = is_live(self.source) and self.opened is None
        fresh = pos is not None and records.now() - pos.saved_at <= (
            self.settings.ingest.resume_window_s
        )
        self.engine.resume(pos, same_life=pull and fresh)
        log.info(
            "%s/%s: %s at seq %d", m.tenant, m.stream_id,
            "same life resumed" if pull and fresh else "new life", self.engine.seq,
        )  # fmt: skip

    async def _save_positions(self, store: PositionStore) -> None:
        """Save the position of the last acknowledged frame every position_save_s."""
        saved: Position | None = None
        try:
            # ends on stop, not only on cancel: a Redis client under load lost the cancel of a
            # save in flight once, and the stream's process never ended (test_position.py)
            while not self._stop.is_set():
                await asyncio.sleep(self.settings.ingest.position_save_s)
                if self._sent is not None and self._sent is not saved:
                    saved = self._sent
                    await store.save(self.meta.tenant, self.meta.stream_id, saved)
        finally:
            if self._sent is not None and self._sent is not saved:
                await store.save(self.meta.tenant, self.meta.stream_id, self._sent)

    async def _watch_stall(self) -> None:
        """Connected but silent for ``ingest.stall_s``: stalled (until a frame comes)."""
        stall_s = self.settings.ingest.stall_s
        while not self._stop.is_set():
            await asyncio.sleep(min(1.0, stall_s / 2))
            silent = time.monotonic() - self._last_read
            if self.status.state is SourceState.LIVE and silent > stall_s:
                with contextlib.suppress(TransitionError):  # it moved on meanwhile
                    self.status.to(SourceState.STALLED)

    async def _start_producer(self, producer: AIOKafkaProducer) -> None:
        """Wait for Kafka (a restart, a network blip) instead of failing the stream at once."""

        def waiting(rs: tenacity.RetryCallState) -> None:
            BROKER_WAITS.inc()
            log.warning(
                "Kafka unreachable (%s); retrying in 1 s", rs.outcome and rs.outcome.exception()
            )

        wait_s = self.settings.ingest.broker_wait_s
        try:
            async for attempt in tenacity.AsyncRetrying(
                retry=tenacity.retry_if_exception_type(KafkaConnectionError),
                wait=tenacity.wait_fixed(1.0),
                stop=tenacity.stop_after_delay(wait_s),
                before_sleep=waiting,
                reraise=True,
            ):
                with attempt:
                    try:
                        await producer.start()
                    except KafkaConnectionError:
                        await producer.stop()  # release what the failed start opened
                        raise
        except KafkaConnectionError as exc:
            raise IngestError(
                f"Kafka at {self.settings.kafka_bootstrap} unreachable for {wait_s:g}s ({exc}); "
                "check FRAMEWATCH_KAFKA_BOOTSTRAP and that the broker runs"
            ) from None

    async def run(self) -> Summary:
        """Ingest until the source ends (file) or stop() (live). SourceError after dead-letter."""
        t0 = time.monotonic()
        cfg = self.settings.ingest
        pull = is_live(self.source) and self.opened is None
        if pull:
            try:
                egress.check(self.source, allow_private=cfg.allow_private_urls)
            except UrlRefusedError as exc:
                self.status.to(SourceState.FAILED)
                raise UrlRefusedError(f"{self.label}: {exc}") from None
        producer = self._producer or kafkaio.producer(self.settings)
        if self._own_producer:
            await self._start_producer(producer)
        topic = self.settings.topics.name("frames")
        key = scope.key(self.meta.tenant, self.meta.stream_id).encode()
        client = redisio.async_client(self.settings, socket_timeout=REDIS_TIMEOUT_S)
        store = PositionStore(self.settings, client)
        await self._resume(store)
        live = is_live(self.source) or self.opened is not None
        strategy = BufferStrategy(cfg.live_buffer) if live else BufferStrategy.WAIT
        self.buffer = buffer = FrameBuffer(cfg.queue_size, strategy, asyncio.get_running_loop())
        if pull:
            self._egress = egress.Egress(
                self.source,
                allow_private=cfg.allow_private_urls,
                timeout_s=cfg.open_timeout_s,
                ca_file=cfg.tls_ca_file,
            )
            await self._egress.start()
        thread = threading.Thread(
            target=self._decode, args=(buffer,), name=f"ingest-{self.meta.stream_id}", daemon=True
        )
        helpers = [
            asyncio.create_task(self._poll_hot(client), name="hot-flag poll"),
            asyncio.create_task(self._watch_stall(), name="stall watch"),
            asyncio.create_task(self._save_positions(store), name="position saver"),
        ]
        error: SourceError | None = None
        try:
            # inside the clean-up's reach: a cancel while waiting still closes Kafka and Redis
            while self.start_at is not None and not self._stop.is_set():
                if (left := self.start_at - time.time()) <= 0:
                    break
                await asyncio.sleep(min(left, 0.25))  # stop() cuts it short
            thread.start()
            while True:
                item = await buffer.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    if isinstance(item, SourceError):
                        error = item
                        continue
                    raise item
                frame: records.Frame = item
                sent_at = time.monotonic()
                await producer.send_and_wait(topic, frame.encode(), key=key)
                self._sent = Position.after(frame)
                self.last_lag = frame_sent(frame, topic, "pull", time.monotonic() - sent_at)
                self.engine.counts.sent += 1
                if self.on_progress:
                    self.on_progress(self.engine.counts, self.last_lag)
            if error is not None:
                self.status.to(SourceState.FAILED)
                SOURCE_ERRORS.labels(reason=error.reason).inc()
                await deadletter.send(
                    producer,
                    self.settings,
                    deadletter.build(
                        "ingest",
                        f"source_{error.reason}",
                        str(error),
                        payload=self.label.encode(),
                    ).model_copy(update={"key": key.decode()}),
                )
                raise error
            self.status.to(SourceState.ENDED)
        except BaseException:
            if not self.status.final:
                self.status.to(SourceState.FAILED)
            raise
        finally:
            if self.on_end is not None:
                self.on_end()
            self._stop.set()
            buffer.close()  # a decoder waiting for room gives up
            while thread.is_alive():
                await asyncio.sleep(0.01)
            # each ends on stop too; bounded, so that a helper that will not end cannot hold
            # the end of the stream (its last position save included)
            await cancel_and_wait(helpers, timeout_s=3 * REDIS_TIMEOUT_S,
                                  what=f"{self.label} helper")  # fmt: skip
            await client.aclose()
            if self._egress is not None:
                await self._egress.close()
            if self._own_producer:
                await producer.stop()
        return self.summary(time.monotonic() - t0)

    def summary(self, elapsed: float, error: str | None = None) -> Summary:
        c = self.engine.counts
        return Summary(
            stream_id=self.meta.stream_id,
            source=self.label,
            read=c.read,
            sampled=c.sampled,
            suppressed=c.suppressed,
            sent=c.sent,
            decode_errors=c.decode_errors,
            reconnects=c.reconnects,
            dropped=self.buffer.dropped if self.buffer else 0,
            state=self.status.state.value,
            by_reason=dict(c.by_reason),
            elapsed_s=round(elapsed, 3),
            error=error,
        )
