"""faust-streaming works against our Kafka 4 broker: consumer group, table, changelog recovery."""

from __future__ import annotations

import subprocess
import sys
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


def _run_probe(bootstrap: str, app_id: str, topic: str, expected: int, tmp: Path) -> str:
    proc = subprocess.run(
        [sys.executable, str(PROBE), bootstrap, app_id, topic, str(expected)],
        capture_output=True, text=True, timeout=120, cwd=tmp,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    # faust redirects stdout into its logger, so the line may arrive on either stream
    out = proc.stdout + proc.stderr
    return next(line[line.index("TOTAL") :] for line in out.splitlines() if "TOTAL" in line)


async def test_faust_table_survives_restart_via_changelog(
    settings: Settings, tmp_path: Path
) -> None:
    topic = settings.topics.prefix + "faust-in"
    await kafkaio.create_topics(settings, keys=[], extra={topic: 3})
    app_id = settings.topics.prefix + "probe"
    await _send(settings, topic, range(30))
    first = _run_probe(settings.kafka_bootstrap, app_id, topic, 30, tmp_path)
    assert first.split()[1] == "30", first
    # The first 30 records are gone from the source topic; 12 new ones arrive. The second
    # worker reaches 42 distinct ids only if it restored the first 30 from the changelog.
    await _delete_all_records(settings, topic)
    await _send(settings, topic, range(30, 42))
    second = _run_probe(settings.kafka_bootstrap, app_id, topic, 42, tmp_path)
    assert second.split()[1] == "42", second
