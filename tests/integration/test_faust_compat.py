"""faust-streaming works against our Kafka 4 broker: consumer group, table, changelog recovery."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from framewatch import kafkaio
from framewatch.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PROBE = Path(__file__).with_name("faust_probe.py")


async def _send(settings: Settings, topic: str, ids: range) -> None:
    p = kafkaio.producer(settings)
    await p.start()
    try:
        for i in ids:
            await p.send_and_wait(topic, str(i).encode(), key=f"k{i % 3}".encode())
    finally:
        await p.stop()


async def _delete_all_records(settings: Settings, topic: str) -> None:
    """Empty the source topic so a restarted worker cannot rebuild state by re-reading it."""
    admin = AIOKafkaAdminClient(**kafkaio.client_config(settings))
    consumer = kafkaio.consumer(settings, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(3)]
        ends = await consumer.end_offsets(parts)
        await admin.delete_records({tp: RecordsToDelete(off) for tp, off in ends.items()})
    finally:
        await consumer.stop()
        await admin.close()


class _Probe:
    """The probe worker as a subprocess; records go in only once its table recovery is done."""

    def __init__(self, bootstrap: str, app_id: str, topic: str, expected: int, tmp: Path) -> None:
        (tmp / "ready").unlink(missing_ok=True)
        self.tmp = tmp
        self.proc = subprocess.Popen(
            [sys.executable, str(PROBE), bootstrap, app_id, topic, str(expected)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp,
        )  # fmt: skip

    async def ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not (self.tmp / "ready").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                out, err = self.proc.communicate()
                raise AssertionError("probe never finished recovery: " + out[-2000:] + err[-3000:])
            await asyncio.sleep(0.2)

    def total(self, timeout: float = 120.0) -> str:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        assert self.proc.returncode == 0, out[-2000:] + err[-3000:]
        # faust redirects stdout into its logger, so the line may arrive on either stream
        return next(
            line[line.index("TOTAL") :] for line in (out + err).splitlines() if "TOTAL" in line
        )


async def test_faust_table_survives_restart_via_changelog(
    settings: Settings, tmp_path: Path
) -> None:
    topic = settings.topics.prefix + "faust-in"
    await kafkaio.create_topics(settings, keys=[], extra={topic: 3})
    app_id = settings.topics.prefix + "probe"
    first = _Probe(settings.kafka_bootstrap, app_id, topic, 30, tmp_path)
    await first.ready()
    await _send(settings, topic, range(30))
    assert first.total().split()[1] == "30"
    # The first 30 records are gone from the source topic; 12 new ones arrive. The second
    # worker reaches 42 distinct ids only if it restored the first 30 from the changelog.
    await _delete_all_records(settings, topic)
    second = _Probe(settings.kafka_bootstrap, app_id, topic, 42, tmp_path)
    await second.ready()
    await _send(settings, topic, range(30, 42))
    assert second.total().split()[1] == "42"
