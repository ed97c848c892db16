"""At start, ingest waits for Kafka for ingest.broker_wait_s (tenacity), then says what to do."""

from __future__ import annotations

import pytest

from framewatch import kafkaio
from framewatch.local import free_port
from framewatch.metrics import sample_value
from framewatch.settings import load_settings
from ingest.engine import StreamMeta
from ingest.errors import IngestError
from ingest.runner import StreamIngester


async def test_an_unreachable_broker_is_retried_then_named_in_the_error() -> None:
    s = load_settings(kafka_bootstrap=f"127.0.0.1:{free_port()}", ingest={"broker_wait_s": 2.5})
    ing = StreamIngester(s, "unused.mp4", StreamMeta("s1", "a1"))
    before = sample_value("framewatch_ingest_broker_waits_total") or 0
    with pytest.raises(IngestError, match=r"unreachable for 2.5s .*FRAMEWATCH_KAFKA_BOOTSTRAP"):
        await ing._start_producer(kafkaio.producer(s))
    assert (sample_value("framewatch_ingest_broker_waits_total") or 0) >= before + 1
