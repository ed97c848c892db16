"""The audit chain through the real worker: verify holds across a crash, then finds tampering."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from framewatch import kafkaio, records
from framewatch.records import AuditEntry, Decision
from framewatch.settings import Settings
from streams import audit
from tests.streams.helpers import scores
from tests.streams.worker import Worker, audited_all, collect, produce, until, verify

pytestmark = pytest.mark.integration


def blocks(n: int, t0: float) -> list[tuple[str, bytes]]:
    s = f"s{n}"
    return [
        (s, records.encode(scores(i, s, cats={"violence.gore": 0.95}, account="acct", t0=t0)))
        for i in range(3)
    ]


async def test_chain_holds_across_a_crash_and_verify_reports_tampered_links(
    settings: Settings, worker: Worker
) -> None:
    t0 = time.time() - 3600
    await produce(settings, [x for n in range(3) for x in blocks(n, t0 + n * 60)])
    await collect(settings, "decisions", want=3, settle=0.5, worker=worker)
    await audited_all(settings, worker)
    ok = verify(settings, worker)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "audit chain ok" in ok.stdout

    # SIGKILL mid-stream, replay part of the input and add more while it is down
    worker.kill()
    await produce(settings, [x for n in range(1, 6) for x in blocks(n, t0 + n * 60)])
    worker.start()
    decisions = await collect(settings, "decisions", want=6, timeout=90, worker=worker)
    assert len({d.decision_id for d in decisions if isinstance(d, Decision)}) == 6
    links = await audited_all(settings, worker)

    ok = verify(settings, worker, "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = json.loads(ok.stdout)
    assert report["ok"]
    assert sum(p["entries"] for p in report["partitions"]) == sum(
        1 for link in links if isinstance(link, AuditEntry)
    ) - sum(p["duplicates"] for p in report["partitions"])

    # tamper: a modified copy of a partition's last link, and a forged link that skips back
    parts = sorted(
        (p for p in report["partitions"] if p["entries"] >= 2), key=lambda p: -p["entries"]
    )
    assert len(parts) >= 1
    p1 = parts[0]["partition"]
    heads = await _last_links(settings)
    last = heads[p1]
    body = last.model_dump(mode="json")
    body["record"] = {**body["record"], "action": "allow"}  # hash left as it was
    modified = AuditEntry.model_validate(body)
    first = await _first_link(settings, p1)
    forged_body = {
        "seq": last.seq + 1,
        "prev_hash": first.hash,  # links back past the real previous link
        "record_type": "decision",
        "record": first.record,
        "written_at": time.time(),
    }
    forged = AuditEntry(hash=audit.link_hash(first.hash, forged_body), **forged_body)
    other = next(
        p["partition"] for p in report["partitions"] if p["partition"] != p1 and p["entries"]
    )
    ends = await _produce_to(settings, [(p1, modified), (other, forged)])

    bad = verify(settings, worker, "--json")
    assert bad.returncode == 3, bad.stdout + bad.stderr
    rep = {p["partition"]: p for p in json.loads(bad.stdout)["partitions"]}
    assert not json.loads(bad.stdout)["ok"]
    b1 = rep[p1]["break"]
    assert (b1["offset"], b1["seq"]) == (ends[p1], last.seq)
    assert "modified" in b1["reason"] and b1["found"] == last.hash
    b2 = rep[other]["break"]
    assert b2["offset"] == ends[other] and b2["seq"] == last.seq + 1
    assert "prev_hash" in b2["reason"] and b2["found"] == first.hash
    # partitions nobody touched still verify
    assert all(v["ok"] for k, v in rep.items() if k not in (p1, other))
    text = verify(settings, worker)
    assert text.returncode == 3
    assert f"partition {p1}: BROKEN at offset {ends[p1]} seq {last.seq}" in text.stdout
    # the worker made the audit topic keep its links forever (the chain's start never expires)
    assert await _topic_config(settings, settings.topics.name("audit"), "retention.ms") == "-1"


async def test_a_burst_chains_many_links_at_once_and_survives_a_kill_mid_burst(
    settings: Settings, worker: Worker
) -> None:
    """Every record a red line: each is a block, a strike and often an enforcement step, all
    chained. The worker is killed while links are in flight (the saved head behind the
    topic), restarted, and the chain, with what the replay re-sent, verifies."""
    t0 = time.time() - 600

    def red(k: int) -> tuple[str, bytes]:
        s = f"burst{k}"
        cats = {"child_safety": 0.99}
        return s, records.encode(scores(0, s, cats=cats, account=f"a{k % 25}", t0=t0 + k))

    await _produce_fast(settings, [red(k) for k in range(400)])
    deadline = time.monotonic() + 120
    while (at_kill := await _audit_count(settings)) < 20:
        assert time.monotonic() < deadline, "the worker chained nothing"
        await asyncio.sleep(0.05)
    worker.kill()
    await _produce_fast(settings, [red(k) for k in range(400, 600)])
    worker.start()

    def all_decided(recs: list) -> bool:  # every red line a block, one decision each
        return len({r.decision_id for r in recs if isinstance(r, Decision)}) >= 600

    assert all_decided(await until(settings, "decisions", all_decided, worker, timeout=240))
    links = await audited_all(settings, worker, timeout=240)
    chained = sum(1 for link in links if isinstance(link, AuditEntry))
    assert at_kill < 600 <= chained  # killed mid-burst; every decision got its link

    ok = verify(settings, worker, "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = json.loads(ok.stdout)
    assert report["ok"]
    dups = sum(p["duplicates"] for p in report["partitions"])
    assert sum(p["entries"] for p in report["partitions"]) == chained - dups
    print(f"links at the kill: {at_kill}, links: {chained}, exact re-sends: {dups}")


async def _produce_fast(settings: Settings, items: list[tuple[str, bytes]]) -> None:
    prod = kafkaio.producer(settings)
    await prod.start()
    try:
        for key, value in items:
            await prod.send(settings.topics.name("scores"), value, key=key.encode())
        await prod.flush()
    finally:
        await prod.stop()


async def _audit_count(settings: Settings) -> int:
    cons = kafkaio.consumer(settings, group_id=None)  # type: ignore[arg-type]
    await cons.start()
    try:
        topic = settings.topics.name("audit")
        parts = cons.partitions_for_topic(topic) or set()
        if not parts:
            await cons._client.force_metadata_update()
            parts = cons.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        if not tps:
            return 0
        ends = await cons.end_offsets(tps)
        starts = await cons.beginning_offsets(tps)
        return sum(ends[tp] - starts[tp] for tp in tps)
    finally:
        await cons.stop()


async def _topic_config(settings: Settings, topic: str, key: str) -> str | None:
    admin = AIOKafkaAdminClient(**kafkaio.client_config(settings))
    await admin.start()
    try:
        [resp] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        return next((e[1] for e in resp.resources[0][4] if e[0] == key), None)
    finally:
        await admin.close()


async def _links(settings: Settings) -> dict[int, list[AuditEntry]]:
    cons = kafkaio.consumer(settings, settings.topics.name("audit"), group_id=None)
    await cons.start()
    out: dict[int, list[AuditEntry]] = {}
    try:
        idle = 0
        while idle < 3:
            batch = await cons.getmany(timeout_ms=500)
            idle = 0 if batch else idle + 1
            for tp, msgs in batch.items():
                out.setdefault(tp.partition, []).extend(
                    records.decode(m.value, expect=AuditEntry) for m in msgs
                )
    finally:
        await cons.stop()
    return out


async def _last_links(settings: Settings) -> dict[int, AuditEntry]:
    return {p: links[-1] for p, links in (await _links(settings)).items()}


async def _first_link(settings: Settings, partition: int) -> AuditEntry:
    return (await _links(settings))[partition][0]


async def _produce_to(settings: Settings, items: list[tuple[int, AuditEntry]]) -> dict[int, int]:
    """Write entries straight into audit partitions (as an attacker with produce rights)."""
    prod = kafkaio.producer(settings)
    await prod.start()
    offsets = {}
    try:
        for part, entry in items:
            md = await prod.send_and_wait(
                settings.topics.name("audit"), records.encode(entry), partition=part
            )
            offsets[part] = md.offset
    finally:
        await prod.stop()
    return offsets
