"""Prometheus metrics of the ingest stage."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FRAMES_DECODED = Counter(
    "framewatch_ingest_frames_decoded_total", "frames decoded", ["tenant", "stream"]
)
FRAMES_SAMPLED = Counter(
    "framewatch_ingest_frames_sampled_total", "frames chosen as samples", ["reason"]
)
FRAMES_SUPPRESSED = Counter(
    "framewatch_ingest_frames_suppressed_total", "samples dropped as near-duplicates"
)
LAST_FRAME = Gauge(
    "framewatch_stream_last_frame_timestamp_seconds",
    "unix time of the last frame sent for a stream (alert when a live stream goes quiet)",
    ["tenant", "stream_id"],
)
FRAMES_SENT = Counter("framewatch_ingest_frames_sent_total", "frames produced to Kafka", ["source"])
DECODE_ERRORS = Counter(
    "framewatch_ingest_decode_errors_total", "packets or frames that failed to decode"
)
SOURCE_ERRORS = Counter(
    "framewatch_ingest_source_errors_total",
    "sources that failed (open, corrupt, timeout)",
    ["reason"],
)
RECONNECTS = Counter("framewatch_ingest_reconnects_total", "live source reconnect attempts")
LAG = Gauge(
    "framewatch_ingest_lag_seconds",
    "capture to produced, last frame of a stream",
    ["tenant", "stream"],
)
PRODUCE_LATENCY = Histogram(
    "framewatch_ingest_produce_seconds",
    "time for Kafka to acknowledge one frame",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
PUSH_REQUESTS = Counter(
    "framewatch_ingest_push_requests_total", "HTTP frame push requests", ["status"]
)
HOT_POLL_ERRORS = Counter(
    "framewatch_ingest_hot_poll_errors_total",
    "reads of the Redis 'hot' hint that failed (sampling stays at its last rate meanwhile)",
)
BROKER_WAITS = Counter(
    "framewatch_ingest_broker_waits_total", "failed connects to Kafka at start, retried"
)
