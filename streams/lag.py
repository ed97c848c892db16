"""Consumer lag of the Faust worker, exported as framewatch_consumer_lag like every stage's.

Faust fetches ahead and buffers, so the fetch position says little about work left; the lag here
is the partition end minus the worker's committed offset (what `kafka-consumer-groups` shows and
what an autoscaler should read). Only partitions this worker holds are exported: after a
rebalance the partitions it lost disappear from its /metrics, so two workers' metrics together
show who holds what.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from framewatch import metrics

log = logging.getLogger(__name__)


def lag_by_partition(
    assigned: Iterable[Any], ends: Mapping[Any, int], committed: Mapping[Any, int | None]
) -> dict[tuple[str, int], int]:
    """(topic, partition) -> records between the committed offset and the partition end."""
    out: dict[tuple[str, int], int] = {}
    for tp in assigned:
        end = ends.get(tp)
        if end is None:
            continue
        done = committed.get(tp) or 0  # never committed: everything from the start is pending
        out[(tp.topic, tp.partition)] = max(0, end - done)
    return out


class LagExporter:
    """Sets the gauge for held partitions and removes the ones this worker no longer holds."""

    def __init__(self, stage: str, topics: set[str]) -> None:
        self.stage, self.topics = stage, topics
        self.exported: set[tuple[str, int]] = set()

    def export(self, lags: Mapping[tuple[str, int], int]) -> None:
        for (topic, part), lag in lags.items():
            metrics.CONSUMER_LAG.labels(stage=self.stage, topic=topic, partition=str(part)).set(lag)
        for topic, part in self.exported - set(lags):
            metrics.CONSUMER_LAG.remove(self.stage, topic, str(part))
        self.exported = set(lags)

    async def observe(self, consumer: Any) -> None:
        """Read a Faust consumer: its assignment, the partition ends (one broker call) and
        the offsets it committed (Faust keeps them, read from the broker at assignment)."""
        assigned = [tp for tp in consumer.assignment() if tp.topic in self.topics]
        ends = await consumer.highwaters(*assigned) if assigned else {}
        committed = getattr(consumer, "_committed_offset", {})
        self.export(lag_by_partition(assigned, ends, committed))


def install(app: Any, stage: str, topics: set[str], interval_s: float) -> LagExporter:
    """A Faust timer that exports the lag of the agents' input topics every ``interval_s``."""
    exporter = LagExporter(stage, topics)

    @app.timer(interval=interval_s)
    async def export_lag() -> None:
        try:
            await exporter.observe(app.consumer)
        except Exception as exc:  # a metric must never take the worker down
            log.warning("could not read consumer lag: %s", exc)

    return exporter
