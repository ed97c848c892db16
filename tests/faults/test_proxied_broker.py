"""A client bootstrapped through the proxy stays behind it: cutting it cuts the client off."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from devkit.faults import Stack
from framewatch.kafkaio import create_topics

pytestmark = [pytest.mark.faults, pytest.mark.quick, pytest.mark.integration]


async def test_metadata_advertises_the_proxy_and_a_cut_stops_delivery(fault_stack: Stack) -> None:
    s = fault_stack.settings("proxied")
    await create_topics(s)
    topic = s.topics.name("frames")
    async with fault_stack.proxy() as proxy:
        prod = AIOKafkaProducer(
            bootstrap_servers=f"127.0.0.1:{proxy.port}", request_timeout_ms=3000,
            metadata_max_age_ms=1000,
        )  # fmt: skip
        await prod.start()
        try:
            await prod.send_and_wait(topic, b"before", key=b"k")
            # every broker the client knows of is the proxy, never the broker's own port
            ports = {b.port for b in prod.client.cluster.brokers()}
            assert ports == {proxy.port}
            await proxy.cut()
            with pytest.raises((KafkaError, TimeoutError)):
                await asyncio.wait_for(prod.send_and_wait(topic, b"during", key=b"k"), 4)
            proxy.restore()
            await asyncio.wait_for(prod.send_and_wait(topic, b"after", key=b"k"), 30)
        finally:
            await prod.stop()
        assert proxy.connections >= 2  # it had to come back through the proxy
