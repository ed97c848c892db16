"""Prometheus metrics of the ingest stage."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FRAMES_DECODED = Counter("framewatch_ingest_frames_decoded_total", "frames decoded", ["stream"])
FRAMES_SAMPLED = Counter(
    "framewatch_ingest_frames_sampled_total", "frames chosen as samples", ["reason"]
)
FRAMES_SUPPRESSED = Counter(
    "framewatch_ingest_frames_suppressed_total", "samples dropped as near-duplicates"
)
LAST_FRAME = Gauge(
    "framewatch_stream_last_frame_timestamp_seconds",
    "unix time of the last frame sent for a stream (alert when a live stream goes quiet)",
    ["stream_id"],
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
    "framewatch_ingest_lag_seconds", "capture to produced, last frame of a stream", ["stream"]
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
FRAMES_DROPPED = Counter(
    "framewatch_ingest_frames_dropped_total",
    "samples dropped unsent because a live source's buffer was full (the oldest goes first)",
    ["strategy"],
)
SOURCE_STATE = Gauge(
    "framewatch_ingest_source_state",
    "1 for the state a source is in (connecting, live, stalled, reconnecting, ended, failed)",
    ["stream_id", "state"],
)
RTMP_REFUSED = Counter(
    "framewatch_ingest_rtmp_refused_total",
    "RTMP connections closed before decoding (handshake_timeout, idle_timeout, bad_key, "
    "too_many, not_rtmp, bad_app, closed_before_publish, key_check_failed)",
    ["reason"],
)
EGRESS_REFUSED = Counter(
    "framewatch_ingest_egress_refused_total",
    "connections of pulls refused by the network guard (redirects, playlist entries, DNS)",
)
