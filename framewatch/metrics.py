"""Prometheus helpers: every process serves /metrics; shared metrics live here.

Each stage registers its own metrics in :func:`stage_registry` (never the default registry), and
its /metrics serves that registry plus the core's: a process that loads other stages' modules
(the ``framewatch`` command loads every stage's subcommands) still exports only its own series.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Metric,
    start_http_server,
)

from framewatch.errors import PROCESSING_FAILED, RECORD_DECODE_REASONS
from framewatch.fields import ID_MAX, IDENT_RE

log = logging.getLogger(__name__)
_STAGES: dict[str, CollectorRegistry] = {}


def stage_registry(stage: str) -> CollectorRegistry:
    """The registry of one stage's own metrics."""
    return _STAGES.setdefault(stage, CollectorRegistry(auto_describe=True))


class _Union:
    """A collector that reads several registries (the core's and one stage's)."""

    def __init__(self, registries: Iterable[CollectorRegistry]) -> None:
        self.registries = list(registries)

    def describe(self) -> list[Metric]:
        return []  # no name checks across registries: each checked its own at registration

    def collect(self) -> Iterator[Metric]:
        for r in self.registries:
            yield from r.collect()


def served(stage: str) -> CollectorRegistry:
    """What the /metrics of ``stage`` serves: the core metrics plus that stage's own."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Union([REGISTRY, stage_registry(stage)]))
    return reg


def sample_value(name: str, labels: dict[str, str] | None = None) -> float | None:
    """A sample's value from the core or any stage's registry (tests and the fault suite)."""
    for r in [REGISTRY, *_STAGES.values()]:
        v = r.get_sample_value(name, labels or {})
        if v is not None:
            return v
    return None


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


def init_series(
    stage: str,
    *,
    topics_in: Iterable[str] = (),
    topics_out: Iterable[str] = (),
    dead_letter_reasons: Iterable[str] = (),
) -> None:
    """Create at 0 the labelled series that rules and the dashboard read.

    A labelled counter appears only at its first increment, so Prometheus would first see it at
    1 and ``increase()`` would read 0: the first dead letter would page nobody."""
    for t in topics_in:
        RECORDS_IN.labels(stage=stage, topic=t)
    for t in topics_out:
        RECORDS_OUT.labels(stage=stage, topic=t)
    for r in {*RECORD_DECODE_REASONS, PROCESSING_FAILED, *dead_letter_reasons}:
        DEAD_LETTERS.labels(stage=stage, reason=r)


BIND_FAILED = Gauge(
    "framewatch_metrics_bind_failed",
    "1 when this process could not bind its /metrics port and runs without it",
    ["stage"],
)


def serve(
    stage: str, host: str, port: int, port_dir: Path | None = None, service: str | None = None
) -> int | None:
    """Start the /metrics endpoint and mark the stage up; return the bound port (None if none).

    Port 0 disables it, unless ``port_dir`` is set: then the kernel picks a free port and it is
    written to ``<port_dir>/<service>.port`` (the service's name; the stage's by default) (a harness that picked a port and bound it later
    would race every outgoing connection for it). Metrics are optional: a port already taken
    (a predecessor still stopping, a second worker on the host) is logged loudly and the process
    goes on without them, because exiting would stop decisions, red lines included.
    """
    UP.labels(stage=stage).set(1)
    if not port and port_dir is None:
        return None
    try:
        server, _thread = start_http_server(
            0 if port_dir is not None else port, addr=host, registry=served(stage)
        )
    except OSError as exc:
        BIND_FAILED.labels(stage=stage).set(1)
        log.error(
            "cannot serve metrics on %s:%d (%s); %s goes on WITHOUT /metrics. Free the port "
            "(is an older %s process still running?) or set another metrics port, then restart",
            host, port, exc, stage, stage,
        )  # fmt: skip
        return None
    bound = int(server.server_port)
    if port_dir is not None:
        port_dir.mkdir(parents=True, exist_ok=True)
        name = service or stage
        tmp = port_dir / f".{name}.port.tmp"
        tmp.write_text(str(bound))
        tmp.replace(port_dir / f"{name}.port")
    log.info("metrics on http://%s:%d/metrics", host, bound)
    return bound


def served_port(port_dir: Path, stage: str) -> int | None:
    """The port a process started with ``port_dir`` bound for its metrics (None until then)."""
    try:
        return int((port_dir / f"{stage}.port").read_text())
    except (OSError, ValueError):
        return None


CONSUMER_LAG = Gauge(
    "framewatch_consumer_lag",
    "records between the partition end and the group's committed offset: work not yet durably "
    "done, what a restart would redo and what autoscaling reads (as Kafka's own tools count it)",
    ["stage", "topic", "partition"],
)
_LAST_LAG: dict[str, float] = {}


async def observe_lag(stage: str, consumer: Any, every_s: float) -> None:
    """Export end - committed for every partition an aiokafka consumer holds, at most every
    ``every_s`` (the committed offset is a broker call). The same meaning as streams/lag.py:
    end - position would hide records fetched and in flight but not yet produced or committed."""
    now = time.monotonic()
    if now - _LAST_LAG.get(stage, float("-inf")) < every_s:
        return
    _LAST_LAG[stage] = now
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        if high is None:
            continue
        try:
            done = await consumer.committed(tp) or 0  # never committed: all of it is pending
        except KafkaError as e:  # a metric never stops a stage (no coordinator yet, a move)
            log.debug("lag of %s not read now: %r", tp, e)
            return
        CONSUMER_LAG.labels(stage=stage, topic=tp.topic, partition=str(tp.partition)).set(
            max(0, high - done)
        )


OTHER = "_other"  # the label value of anything that is not a valid id (never a valid id itself)


def id_label(value: str) -> str:
    """``value`` as a label value when it is a valid id (framewatch.fields), else OTHER: a label
    never carries an unbounded or unprintable string a client sent."""
    return value if len(value) <= ID_MAX and IDENT_RE.fullmatch(value) else OTHER


class LabelBudget:
    """At most ``limit`` label sets of one kind (a tenant's stream) in /metrics at once.

    Stream ids are clients' names, so their count has no bound of its own; the least recently
    used set is evicted (``on_evict`` removes its series) when a new one comes, so the streams
    that are live stay visible and the series count stays bounded. Thread-safe (decode threads).
    """

    def __init__(self, limit: int, on_evict: Callable[[tuple[str, ...]], None]) -> None:
        self.limit, self.on_evict = limit, on_evict
        self._seen: OrderedDict[tuple[str, ...], None] = OrderedDict()
        self._lock = threading.Lock()

    def admit(self, *values: str) -> tuple[str, ...]:
        """The label values to use (each through :func:`id_label`); marks them recently used."""
        labels = tuple(id_label(v) for v in values)
        evicted: list[tuple[str, ...]] = []
        with self._lock:
            self._seen[labels] = None
            self._seen.move_to_end(labels)
            while len(self._seen) > self.limit:
                evicted.append(self._seen.popitem(last=False)[0])
        for old in evicted:
            self.on_evict(old)
        return labels

    def forget(self, *values: str) -> None:
        """Drop a label set now (a stream that ended)."""
        labels = tuple(id_label(v) for v in values)
        with self._lock:
            known = self._seen.pop(labels, 0) is None
        if known:
            self.on_evict(labels)
