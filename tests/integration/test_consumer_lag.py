"""framewatch_consumer_lag means end - committed in the aiokafka stages too (as in streams)."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import GroupCoordinatorNotAvailableError
from prometheus_client import REGISTRY

from framewatch import kafkaio, metrics
from framewatch.settings import Settings

pytestmark = pytest.mark.integration


def _lag(topic: str) -> float:
    return sum(
        REGISTRY.get_sample_value(
            "framewatch_consumer_lag", {"stage": "lagtest", "topic": topic, "partition": str(p)}
        )
        or 0.0
        for p in range(6)
    )


async def test_fetched_but_uncommitted_records_count_as_lag(
    settings: Settings, kafka_topics: dict[str, str]
) -> None:
    topic = settings.topics.name("frames")
    prod = kafkaio.producer(settings)
    await prod.start()
    try:
        for i in range(5):
            await prod.send_and_wait(topic, b"x", key=f"k{i}".encode())
    finally:
        await prod.stop()
    cons = kafkaio.consumer(settings, topic, group_id=f"{settings.topics.prefix}lagtest")
    await cons.start()
    try:
        got = 0
        for _ in range(50):
            got += sum(len(v) for v in (await cons.getmany(timeout_ms=300)).values())
            if got >= 5:
                break
        assert got == 5
        await metrics.observe_lag("lagtest", cons, every_s=0)
        assert _lag(topic) == 5  # fetched, not done: end - position would say 0
        await cons.commit()
        await metrics.observe_lag("lagtest", cons, every_s=0)
        assert _lag(topic) == 0
    finally:
        await cons.stop()


class _NoCoordinator:
    """A consumer whose group coordinator is not there yet (a broker still starting)."""

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("t", 0)}

    def highwater(self, tp: TopicPartition) -> int:
        return 7

    async def committed(self, tp: TopicPartition) -> int:
        raise GroupCoordinatorNotAvailableError()


async def test_a_lag_read_the_broker_cannot_answer_never_stops_the_stage() -> None:
    # every stage reads lag in its consume loop: a broker call for a metric must not end it
    await metrics.observe_lag("nocoord", _NoCoordinator(), every_s=0)
