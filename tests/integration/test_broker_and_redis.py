"""The foundation against the real broker and Redis the session started."""

from __future__ import annotations

import asyncio

import pytest

from framewatch import kafkaio, records, redisio
from framewatch.settings import Settings
from tests.samples import sample_records

pytestmark = pytest.mark.integration


async def test_every_record_type_round_trips_through_kafka(
    settings: Settings, kafka_topics: dict[str, str]
) -> None:
    topic = settings.topics.name("audit")
    sent = sample_records()
    producer = kafkaio.producer(settings)
    await producer.start()
    try:
        for rec in sent:
            await producer.send_and_wait(topic, records.encode(rec), key=b"stream-1")
    finally:
        await producer.stop()

    consumer = kafkaio.consumer(settings, topic, group_id=f"{settings.redis_prefix}g")
    await consumer.start()
    got: list[records._Record] = []
    try:
        async with asyncio.timeout(30):
            while len(got) < len(sent):
                for msgs in (await consumer.getmany(timeout_ms=500)).values():
                    got.extend(records.decode(m.value) for m in msgs)
        await consumer.commit()
    finally:
        await consumer.stop()
    assert got == sent  # one key -> one partition -> order kept, every field identical


async def test_topics_create_is_idempotent(settings: Settings) -> None:
    first = await kafkaio.create_topics(settings)
    second = await kafkaio.create_topics(settings)
    assert set(first.values()) == {"created"}
    assert set(second.values()) == {"exists"}
    assert settings.topics.name("frames") in second


async def test_redis_write_and_read_with_prefix(settings: Settings) -> None:
    r = redisio.async_client(settings)
    try:
        k = redisio.key(settings, "stream", "s1")
        await r.hset(k, mapping={"account": "a1", "tenant": "acme"})
        assert await r.hgetall(k) == {b"account": b"a1", b"tenant": b"acme"}
        assert k.startswith(settings.redis_prefix)
    finally:
        await r.aclose()
