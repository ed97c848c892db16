"""Prometheus helpers: every process serves /metrics; shared metrics live here."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

DEAD_LETTERS = Counter(
    "framewatch_dead_letters_total", "records sent to the dead-letter topic", ["stage", "reason"]
)
RECORDS_IN = Counter("framewatch_records_in_total", "records consumed", ["stage", "topic"])
RECORDS_OUT = Counter("framewatch_records_out_total", "records produced", ["stage", "topic"])
UP = Gauge("framewatch_up", "1 while the process runs", ["stage"])
# capture -> decision produced: the headline latency of the whole pipeline
CAPTURE_TO_DECISION = Histogram(
    "framewatch_capture_to_decision_seconds",
    "frame capture (wall clock) to decision produced",
    ["action"],
    buckets=(0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0),
)


def serve(stage: str, host: str, port: int) -> None:
    """Start the /metrics endpoint (port 0 disables it) and mark the stage up."""
    UP.labels(stage=stage).set(1)
    if port:
        start_http_server(port, addr=host)
        log.info("metrics on http://%s:%d/metrics", host, port)


CONSUMER_LAG = Gauge(
    "framewatch_consumer_lag",
    "records between a consumer's position and the partition end (autoscaling reads it)",
    ["stage", "topic", "partition"],
)


async def observe_lag(stage: str, consumer: Any) -> None:
    """Export the lag of every partition an aiokafka consumer holds (cheap: no broker call)."""
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        if high is None:
            continue
        pos = await consumer.position(tp)
        CONSUMER_LAG.labels(stage=stage, topic=tp.topic, partition=str(tp.partition)).set(
            max(0, high - pos)
        )
