"""From decoded frames to Frame records: sampling, scene cuts, PDQ, duplicates, thumbnails.

Synchronous and Kafka-free so it runs in a decode thread, in tests and in the benchmark alike.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import cv2

from framewatch import records
from framewatch.settings import Settings
from ingest import framedata
from ingest.metrics import FRAMES_DECODED, FRAMES_SAMPLED, FRAMES_SUPPRESSED, stream_labels
from ingest.position import Position
from ingest.sampling import DuplicateSuppressor, IntervalSampler, SceneCutDetector
from ingest.source import DecodedFrame


@dataclass
class StreamMeta:
    stream_id: str
    account_id: str
    tenant: str = "default"
    channel: str | None = None


@dataclass
class Counts:
    read: int = 0
    sampled: int = 0
    suppressed: int = 0
    sent: int = 0
    decode_errors: int = 0
    reconnects: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


class SampleEngine:
    """Turns a stream's decoded frames into Frame records; keeps seq across reconnects.

    Each engine is a new life of the stream (a fresh ``session``) unless ``resume`` continues
    a saved position of the same life.
    """

    def __init__(
        self,
        settings: Settings,
        meta: StreamMeta,
        *,
        fps: float | None = None,
        keyframes_only: bool = False,
        scene_cuts: bool = True,
    ) -> None:
        cfg = settings.ingest
        self.cfg = cfg
        # streams share out the cores (one decode thread each): OpenCV's pool inside each
        # scene-check resize only adds hand-offs
        cv2.setNumThreads(1)
        self.meta = meta
        self.base_fps = fps or cfg.default_fps
        self.keyframes_only = keyframes_only
        self.interval = IntervalSampler(self.base_fps, cfg.max_jump_s)
        self.scene = SceneCutDetector(cfg.scene_cut_threshold, cfg.scene_cut_min_gap_s)
        self.scene_cuts = scene_cuts and not keyframes_only
        self.scene_check_s = 1.0 / cfg.scene_check_fps
        self._next_scene_check = 0.0
        self.dedup = DuplicateSuppressor(cfg.dedup_max_distance, cfg.heartbeat_s)
        self.thumbnail = framedata.Thumbnailer(cfg.thumbnail_short_side, cfg.jpeg_quality,
                                               threads=cfg.decode_threads)  # fmt: skip
        self.hot = False
        self.counts = Counts()
        self.seq = 0
        self.session = records.new_id()
        self._pts_offset = 0.0  # keeps pts increasing across reconnects
        self._last_pts = 0.0

    def resume(self, pos: Position | None, *, same_life: bool) -> None:
        """Continue from a saved position (before the first frame): seq goes on from it;
        ``same_life`` (an ingest restart mid-stream) also keeps its session, its pts and its
        last hash for duplicate suppression, otherwise this is a new life of the stream."""
        if pos is None:
            return
        self.seq = pos.seq
        if same_life and pos.session:
            self.session = pos.session
            self._last_pts = pos.pts
            self._pts_offset = pos.pts + 1.0 / self.interval.fps
            self.dedup.resume(pos.pdq, time.monotonic())

    def set_hot(self, hot: bool) -> None:
        """Sample at hot_fps while a stream is hot (set from a Redis poll, not per frame)."""
        if hot != self.hot:
            self.hot = hot
            self.interval.set_fps(self.cfg.hot_fps if hot else self.base_fps)

    def new_connection(self) -> None:
        """A reconnect restarts source pts at 0: continue from where the last connection was."""
        self._pts_offset = self._last_pts + 1.0 / self.interval.fps
        self.counts.reconnects += 1

    def wants(self, pts: float, pending: Sequence[float] = ()) -> bool:
        """Whether a frame at source time ``pts`` could become a sample once the ``pending``
        frames before it are processed: in keyframe mode a keyframe that is not due is skipped
        undecoded (``VideoSource.frames(wanted=...)``)."""
        interval = self.interval
        if pending:
            interval = copy.copy(interval)
            for p in pending:
                interval.decide(p + self._pts_offset)
        return interval.due(pts + self._pts_offset)

    def process(self, frames: Iterable[DecodedFrame]) -> Iterator[records.Frame]:
        decoded = FRAMES_DECODED.labels(*stream_labels(self.meta.tenant, self.meta.stream_id))
        for df in frames:
            self.counts.read += 1
            decoded.inc()
            pts = df.pts + self._pts_offset
            self._last_pts = pts
            reason = self.interval.decide(pts)
            if reason == "interval" and self.hot:
                reason = "hot"
            elif reason == "interval" and self.keyframes_only:
                reason = "keyframe"
            if reason is None and self.scene_cuts and pts >= self._next_scene_check:
                self._next_scene_check = pts + self.scene_check_s
                if self.scene.is_cut(pts, framedata.scene_signature(df.frame)):
                    reason = "scene_cut"
            if reason is None:
                continue
            pdq, quality = framedata.frame_pdq(df.frame, full_frame=self.cfg.pdq_full_frame)
            final = self.dedup.decide(pdq, time.monotonic(), reason)
            if final is None:
                self.counts.suppressed += 1
                FRAMES_SUPPRESSED.inc()
                continue
            self.counts.sampled += 1
            self.counts.by_reason[final] = self.counts.by_reason.get(final, 0) + 1
            FRAMES_SAMPLED.labels(reason=final).inc()
            frame = records.Frame(
                frame_id=records.new_id(),
                stream_id=self.meta.stream_id,
                account_id=self.meta.account_id,
                tenant=self.meta.tenant,
                channel=self.meta.channel,
                session=self.session,
                seq=self.seq,
                pts=round(pts, 6),
                captured_at=records.now(),
                sample_reason=final,  # type: ignore[arg-type]
                width=df.frame.width,
                height=df.frame.height,
                pdq=pdq,
                pdq_quality=quality,
                jpeg=self.thumbnail(df.frame),
            )
            self.seq += 1
            yield frame
