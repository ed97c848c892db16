"""settings.streams.table_store: the worker runs on the persistent RocksDB store (rocksdict)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from framewatch import records
from framewatch.records import AuditEntry, Decision
from framewatch.settings import Settings
from tests.streams.helpers import scores
from tests.streams.worker import Worker, collect, produce

pytestmark = pytest.mark.integration
pytest.importorskip("rocksdict")


async def test_a_worker_on_rocksdb_tables_decides_and_keeps_them_on_disk(
    make_settings: Callable[..., Settings], kafka_topics: dict[str, str], tmp_path: Path
) -> None:
    settings = make_settings(streams={"session_timeout_s": 8, "table_store": "rocksdb://"})
    w = Worker(settings, tmp_path / "faust", tmp_path / "worker.log")
    w.start()
    try:
        red = scores(0, "red", cats={"child_safety.csam": 0.9}, account="a1")
        await produce(settings, [(red.stream_id, records.encode(red))])
        got = await collect(settings, "decisions", want=1, worker=w)
        assert [d.action for d in got if isinstance(d, Decision)] == ["block"]
        # the chain head is saved from a callback (streams/app_audit.py save): RocksDB's store
        # takes the partition from the current event, which must be there for it
        links = await collect(settings, "audit", want=1, worker=w)
        assert any(isinstance(x, AuditEntry) for x in links)
        await asyncio.sleep(2 * settings.streams.commit_interval_s + 1)
    finally:
        w.stop()
    log = (tmp_path / "worker.log").read_text()
    assert "audit chain broken" not in log and "Traceback" not in log, log[-3000:]
    assert any(
        p.name.endswith(".db") or "rocksdb" in str(p) for p in (tmp_path / "faust").rglob("*")
    )
