"""Prometheus metrics of the ingest stage."""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram

from framewatch import metrics, records
from framewatch.metrics import LabelBudget, stage_registry

_REG = stage_registry("ingest")  # this stage's /metrics only (core metrics join there)

FRAMES_DECODED = Counter(
    "framewatch_ingest_frames_decoded_total", "frames decoded", ["tenant", "stream"], registry=_REG
)
FRAMES_SAMPLED = Counter(
    "framewatch_ingest_frames_sampled_total", "frames chosen as samples", ["reason"], registry=_REG
)
FRAMES_SUPPRESSED = Counter(
    "framewatch_ingest_frames_suppressed_total", "samples dropped as near-duplicates", registry=_REG
)
LAST_FRAME = Gauge(
    "framewatch_stream_last_frame_timestamp_seconds",
    "unix time of the last frame sent for a stream (alert when a live stream goes quiet)",
    ["tenant", "stream_id"],
    registry=_REG,
)
FRAMES_SENT = Counter(
    "framewatch_ingest_frames_sent_total", "frames produced to Kafka", ["source"], registry=_REG
)
DECODE_ERRORS = Counter(
    "framewatch_ingest_decode_errors_total",
    "packets or frames that failed to decode",
    registry=_REG,
)
SOURCE_ERRORS = Counter(
    "framewatch_ingest_source_errors_total",
    "sources that failed (open, corrupt, timeout)",
    ["reason"],
    registry=_REG,
)
RECONNECTS = Counter(
    "framewatch_ingest_reconnects_total", "live source reconnect attempts", registry=_REG
)
LAG = Gauge(
    "framewatch_ingest_lag_seconds",
    "capture to produced, last frame of a stream",
    ["tenant", "stream"],
    registry=_REG,
)
PRODUCE_LATENCY = Histogram(
    "framewatch_ingest_produce_seconds",
    "time for Kafka to acknowledge one frame",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=_REG,
)
PUSH_REQUESTS = Counter(
    "framewatch_ingest_push_requests_total", "HTTP frame push requests", ["status"], registry=_REG
)
HOT_POLL_ERRORS = Counter(
    "framewatch_ingest_hot_poll_errors_total",
    "reads of the Redis 'hot' hint that failed (sampling stays at its last rate meanwhile)",
    registry=_REG,
)
POSITION_ERRORS = Counter(
    "framewatch_ingest_position_errors_total",
    "reads or writes of a stream's saved position that failed (the stream goes on; a restart "
    "then starts a new life of it)",
    ["op"],
    registry=_REG,
)
BROKER_WAITS = Counter(
    "framewatch_ingest_broker_waits_total",
    "failed connects to Kafka at start, retried",
    registry=_REG,
)
FRAMES_DROPPED = Counter(
    "framewatch_ingest_frames_dropped_total",
    "samples dropped unsent because a live source's buffer was full (the oldest goes first)",
    ["strategy"],
    registry=_REG,
)
SOURCE_STATE = Gauge(
    "framewatch_ingest_source_state",
    "1 for the state a source is in (connecting, live, stalled, reconnecting, ended, failed)",
    ["tenant", "stream_id", "state"],
    registry=_REG,
)
RTMP_REFUSED = Counter(
    "framewatch_ingest_rtmp_refused_total",
    "RTMP connections closed before decoding, by reason (RTMP_REFUSALS)",
    ["reason"],
    registry=_REG,
)
EGRESS_REFUSED = Counter(
    "framewatch_ingest_egress_refused_total",
    "connections of pulls refused by the network guard (redirects, playlist entries, DNS)",
    registry=_REG,
)

# what ingest dead-letters: source_<SourceError.reason>, push_<ImageRejected.code>, rtmp_failed
SOURCE_REASONS = (
    "open_failed", "read_failed", "corrupt", "truncated", "no_video", "unsupported_codec",
    "unsupported_protocol", "timeout", "url_refused",
)  # fmt: skip
PUSH_CODES = ("too_large", "too_many_pixels", "unsupported_media_type", "bad_image")
RTMP_REFUSALS = (
    "handshake_timeout", "idle_timeout", "bad_key", "bad_app", "not_rtmp", "too_many",
    "closed_before_publish", "key_check_failed",
)  # fmt: skip


STATES = ("connecting", "live", "stalled", "reconnecting", "ended", "failed")  # state.SourceState


def _evict(labels: tuple[str, ...]) -> None:
    """Remove every series of one (tenant, stream)."""
    for m in (FRAMES_DECODED, LAST_FRAME, LAG):
        with contextlib.suppress(KeyError):
            m.remove(*labels)
    for state in STATES:
        with contextlib.suppress(KeyError):
            SOURCE_STATE.remove(*labels, state)


# every per-stream series goes through this: ids a client sent are bounded in number and form
STREAMS = LabelBudget(1000, _evict)


def stream_labels(tenant: str, stream_id: str) -> tuple[str, str]:
    """The (tenant, stream) label values of a stream: a valid id, or ``_other``; at most
    ``metrics.max_stream_series`` streams at once (least recently used ones are dropped)."""
    t, s = STREAMS.admit(tenant, stream_id)
    return t, s


def init_series(frames_topic: str, max_stream_series: int = 1000) -> None:
    """Series the rules and dashboard read exist at 0 from the start (see metrics.init_series)."""
    STREAMS.limit = max_stream_series
    reasons = [f"source_{r}" for r in SOURCE_REASONS] + [f"push_{c}" for c in PUSH_CODES]
    metrics.init_series(
        "ingest", topics_out=[frames_topic], dead_letter_reasons=[*reasons, "rtmp_failed"]
    )
    for strategy in ("drop_oldest", "wait"):
        FRAMES_DROPPED.labels(strategy=strategy)
    for reason in RTMP_REFUSALS:
        RTMP_REFUSED.labels(reason=reason)


def frame_sent(frame: records.Frame, topic: str, source: str, produce_s: float) -> float:
    """Count one frame Kafka acknowledged (pull or push alike); returns its capture lag."""
    PRODUCE_LATENCY.observe(produce_s)
    lag = records.now() - frame.captured_at
    tenant, stream = stream_labels(frame.tenant, frame.stream_id)
    LAG.labels(tenant, stream).set(lag)
    FRAMES_SENT.labels(source=source).inc()
    LAST_FRAME.labels(tenant, stream).set(frame.captured_at)
    metrics.RECORDS_OUT.labels(stage="ingest", topic=topic).inc()
    return lag
