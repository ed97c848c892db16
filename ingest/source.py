"""Reading a video file or live URL with PyAV: decoded frames with presentation times.

A corrupt packet costs one frame (counted), not the stream. A file that cannot be opened or has
no video raises :class:`SourceError`; a live source that stays silent raises
:class:`SourceTimeoutError` so the caller can reconnect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import av
import av.error

from framewatch.redact import mask_url
from ingest.errors import SourceError, SourceTimeoutError
from ingest.metrics import DECODE_ERRORS

log = logging.getLogger(__name__)

LIVE_SCHEMES = frozenset({"rtmp", "rtmps", "rtsp", "rtsps", "srt", "udp", "tcp", "http", "https"})


def is_live(source: str) -> bool:
    """True for network URLs (they reconnect); plain paths and file:// are files."""
    return urlparse(source).scheme.lower() in LIVE_SCHEMES


# more frames than any H.264/HEVC decoder holds back for reordering (H.264 allows 16)
REORDER_MAX = 16

# (pts of a keyframe, pts of keyframes still in the decoder) -> decode it?
Wanted = Callable[[float, Sequence[float]], bool]


@dataclass
class DecodedFrame:
    index: int  # n-th decoded frame of this connection, from 0
    pts: float  # presentation time in seconds from the stream's first frame
    frame: av.VideoFrame


class VideoSource:
    """One connection to a source; iterate :meth:`frames` once."""

    def __init__(
        self,
        source: str,
        *,
        keyframes_only: bool = False,
        realtime: bool = False,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 10.0,
        options: dict[str, str] | None = None,
        threads: int = 0,
        skip_nonref: bool = False,
        skip_loop_filter: bool = False,
        sample_fps: float | None = None,
        container: av.container.InputContainer | None = None,
        end_on_read_error: bool = False,
        label: str | None = None,
        batch_s: float = 0.0,
    ) -> None:
        self.source = source
        self.label = label or mask_url(source)  # what messages and logs show: no credentials
        self.keyframes_only = keyframes_only
        self.realtime = realtime
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.options = dict(options or {})
        self.threads = threads  # decoder threads, 0: FFmpeg's choice
        self.skip_nonref = skip_nonref  # ingest.decode_skip_nonref: leave out unreferenced frames
        self.skip_loop_filter = skip_loop_filter  # ingest.keyframe_skip_loop_filter
        self.sample_fps = sample_fps  # the highest rate frames are sampled at (None: unknown)
        self.batch_s = batch_s  # ingest.decode_batch_s: packets decoded together (0: each alone)
        self.decode_errors = 0
        self.fps: float | None = None
        self.duration_s: float | None = None
        self._container: av.container.InputContainer | None = None
        self._given = container  # already opened (e.g. an accepted RTMP publisher)
        # an RTMP publisher hanging up reads as an I/O error: that is the end of its stream
        self.end_on_read_error = end_on_read_error

    def open(self) -> None:
        if self._given is not None:
            self._container, self._given = self._given, None
            self._setup()
            return
        if not is_live(self.source) and not Path(self.source).exists():
            raise SourceError("open_failed", f"{self.label}: no such file; check the path")
        try:
            self._container = av.open(
                self.source,
                options=self.options,
                timeout=(self.open_timeout_s, self.read_timeout_s),
            )
        except av.error.ProtocolNotFoundError:
            raise SourceError(
                "unsupported_protocol",
                f"{self.label}: this PyAV build's FFmpeg cannot read that protocol; use a file, "
                "rtmp(s)://, rtsp(s):// or an HLS http(s):// URL",
            ) from None
        except av.error.ExitError as exc:
            raise SourceTimeoutError(
                f"{self.label}: the source did not start within {self.open_timeout_s:g}s "
                f"({self._why(exc)}); check that it is publishing"
            ) from None
        except (av.error.FFmpegError, OSError) as exc:
            if is_live(self.source) and "timed out" in str(exc).lower():
                raise SourceTimeoutError(
                    f"{self.label}: the source did not start within {self.open_timeout_s:g}s"
                ) from None
            raise SourceError(
                "open_failed" if is_live(self.source) else "corrupt",
                f"{self.label}: cannot open as video ({self._why(exc)}); the file may be truncated or "
                "not a video",
            ) from None
        self._setup()

    def _setup(self) -> None:
        assert self._container is not None
        if not self._container.streams.video:
            self.close()
            raise SourceError("no_video", f"{self.label}: has no video stream")
        stream = self._container.streams.video[0]
        if stream.codec_context is None:  # FFmpeg knows no decoder for its codec tag
            self.close()
            raise SourceError(
                "unsupported_codec",
                f"{self.label}: its video codec is unknown to this FFmpeg, nothing can decode it; "
                "re-encode it, e.g. to H.264",
            )
        if stream.average_rate:
            self.fps = float(stream.average_rate)
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = self.threads
        if self.keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
            if self.skip_loop_filter:
                # no frame is decoded from a keyframe here, so an unfiltered one drifts nowhere
                ctx = stream.codec_context
                ctx.options = {**ctx.options, "skip_loop_filter": "all"}
        elif self.skip_nonref and self._sparse_sampling():
            # frames no other frame refers to (most B-frames) are never reconstructed: the rest
            # decode exactly as before, the sampler takes the next frame when one is missing
            stream.codec_context.skip_frame = "NONREF"
        if self._container.duration:
            self.duration_s = self._container.duration / 1_000_000

    def _sparse_sampling(self) -> bool:
        """Whether samples are at most a quarter of the source's frames: then the frames left
        after skipping the unreferenced ones (at least every other with B-pyramids, every
        fourth with three plain B-frames) still hold one for every sample."""
        return not self.sample_fps or not self.fps or 4 * self.sample_fps <= self.fps

    def _why(self, exc: BaseException) -> str:
        """An FFmpeg error's text without the URL it names (it may carry credentials)."""
        return str(exc).replace(self.source, self.label)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> VideoSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def frames(self, wanted: Wanted | None = None) -> Iterator[DecodedFrame]:
        """Decoded frames in order; decode errors of single packets are skipped and counted.

        In keyframe mode, ``wanted(pts, pending)`` False leaves that keyframe undecoded
        (nothing else is decoded from it); ``pending`` are the times of keyframes already in
        the decoder whose frames have not come out yet (H.264 holds a few for reordering).

        Otherwise packets are decoded in batches spanning up to ``batch_s`` seconds: a decoder
        woken for every frame runs cold. A packet whose frame ``wanted`` says is due for
        sampling is decoded at once with the batch before it, and every packet after it too
        until that frame is out, so samples are not held back."""
        if self._container is None:
            self.open()
        assert self._container is not None
        stream = self._container.streams.video[0]
        tb = float(stream.time_base) if stream.time_base else 1 / 90000
        window = 0.0 if self.keyframes_only else self.batch_s
        first: float | None = None
        index = 0
        wall0 = time.monotonic()
        demux = self._container.demux(stream)
        packets = 0
        last_pts = 0.0
        pending: list[float] = []  # keyframes in the decoder (seconds from the first frame)
        batch: list[av.Packet] = []
        batch_start = 0.0  # arrival of the batch's first packet (seconds from the first frame)
        owed: float | None = None  # a due frame handed to the decoder that is not out yet
        owed_for = 0  # packets decoded alone since; a frame that never comes out (corrupt,
        # timestamps that jump back) stops being waited for after REORDER_MAX of them

        def arrival(packet: av.Packet) -> float | None:
            """When a live source delivers this packet (decode order: dts), from the first
            frame; None before the first frame or without timestamps."""
            raw = packet.dts if packet.dts is not None else packet.pts
            return None if raw is None or first is None else raw * tb - first

        def ready(packet: av.Packet) -> bool:
            """Decode the batch now (ending with ``packet``)?"""
            nonlocal owed, owed_for
            at = arrival(packet)
            if owed is not None:
                owed_for += 1
                if owed_for > REORDER_MAX:
                    owed = None
            if window <= 0 or at is None or owed is not None or not packet.size:
                return True
            if wanted is not None and packet.pts is not None:
                pts = packet.pts * tb - (first or 0.0)
                if wanted(pts, ()):
                    owed, owed_for = pts, 0
                    return True
            return at - batch_start >= window

        def decode(todo: list[av.Packet]) -> Iterator[DecodedFrame]:
            nonlocal first, index, pending, last_pts, owed
            at = arrival(todo[-1])
            paced = False
            if self.realtime and at is not None:  # once a batch: its last packet is in by then
                paced = True
                delay = wall0 + at - time.monotonic()
                if delay > 0:
                    time.sleep(min(delay, 5.0))
            for packet in todo:
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError as exc:
                    self.decode_errors += 1
                    DECODE_ERRORS.inc()
                    log.debug("skipped a corrupt packet of %s: %s", self.label, self._why(exc))
                    continue
                for frame in decoded:
                    raw = frame.pts if frame.pts is not None else frame.dts
                    t = raw * tb if raw is not None else index / (self.fps or 30.0)
                    if first is None:
                        first = t
                        pending = [p - first for p in pending]
                    pts = t - first
                    while pending and pending[0] <= pts + 1e-6:  # out now (or never: corrupt)
                        pending.pop(0)
                    last_pts = pts
                    if owed is not None and pts + 1e-6 >= owed:
                        owed = None
                    if self.realtime and not paced:  # no packet times: pace by frame
                        delay = wall0 + pts - time.monotonic()
                        if delay > 0:
                            time.sleep(min(delay, 5.0))
                    yield DecodedFrame(index, pts, frame)
                    index += 1

        def flush() -> Iterator[DecodedFrame]:
            nonlocal batch
            if batch:
                todo, batch = batch, []
                yield from decode(todo)

        while True:
            try:
                packet = next(demux)
            except StopIteration:
                yield from flush()
                self._check_complete(stream.frames, packets, index, last_pts)
                return
            except av.error.ExitError:
                yield from flush()
                raise SourceTimeoutError(
                    f"{self.label}: no data for {self.read_timeout_s:g}s"
                ) from None
            except av.error.EOFError:
                yield from flush()
                self._check_complete(stream.frames, packets, index, last_pts)
                return
            except (av.error.FFmpegError, OSError) as exc:
                yield from flush()
                if self.end_on_read_error and index:
                    return
                if is_live(self.source):
                    raise SourceError(
                        "read_failed", f"{self.label}: read failed ({self._why(exc)})"
                    ) from None
                raise SourceError(
                    "corrupt",
                    f"{self.label}: the file is corrupt or truncated after {index} frames ({self._why(exc)})",
                ) from None
            if packet.size:
                packets += 1
                if self.keyframes_only and not packet.is_keyframe:
                    # skip_frame=NONKEY would drop its frame anyway: not even parse it
                    continue
                if wanted is not None and self.keyframes_only and packet.pts is not None:
                    if first is not None and not wanted(packet.pts * tb - first, pending):
                        continue  # an intra frame: no later frame needs it decoded
                    pending.append(packet.pts * tb - (first or 0.0))
            if not batch:
                batch_start = arrival(packet) or 0.0
            batch.append(packet)
            if ready(packet):
                yield from flush()

    def _check_complete(
        self, expected: int, packets: int, decoded: int, last_pts: float = 0.0
    ) -> None:
        """A file whose index promises more packets (or, without an index, its header a longer
        duration) than it holds was cut short: say so."""
        if is_live(self.source):
            return
        if not expected:
            self._check_duration(decoded, last_pts)
            return
        if packets >= expected:
            return
        raise SourceError(
            "truncated",
            f"{self.label}: the file is truncated: its index lists {expected} video frames but "
            f"only {packets} are present ({decoded} decoded, their samples were sent); re-upload or re-record "
            "it",
        )

    def _check_duration(self, decoded: int, last_pts: float) -> None:
        """FLV and other index-less files: compare the last frame's time with the duration the
        header declares (only when the file has no audio, whose length may differ)."""
        c = self._container
        if c is None or not c.duration or c.streams.audio:
            return
        declared = c.duration / 1_000_000
        if last_pts >= declared - max(1.0, 0.1 * declared):
            return
        raise SourceError(
            "truncated",
            f"{self.label}: the file is truncated or corrupt: its header declares "
            f"{declared:.1f}s of video but it ends at {last_pts:.1f}s ({decoded} frames decoded, "
            "their samples were sent); re-upload or re-record it",
        )
