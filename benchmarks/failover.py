"""Failover recovery time of the streams worker with N accounts in its ledger table, for each
table store option (settings.streams.table_store, table_standby_replicas).

For each option, on fresh topics: a worker seeds one real ledger row (a red line on one
account); that row is the template for N accounts written straight into the ledger's changelog
(what N strikes would leave there, without N decisions' work); then

* cold start: a worker starts on that changelog; time until it decides a probe (a red-line
  score on every partition of the scores topic);
* failover: that worker is killed (SIGKILL) and, for a store without standbys, a new worker
  starts at once (memory://: a new pod; rocksdb://: the same pod restarted on its own disk,
  data_dir kept); with a standby replica, a second worker already runs and takes over. Time from
  the kill until probes produced after it are decided on every partition.

Faust holds every agent until all its tables are recovered, so "decides again" is the moment
the ledger is back. The group's session timeout (settings.streams.session_timeout_s, 6 s here,
the lowest allowed) is part of every failover: the broker hands a dead member's partitions on
only after it. Ceiling: a worker decides again within FAILOVER_GOAL_S of a kill.

Usage: python benchmarks/failover.py [--accounts N] [--options memory,rocksdb,standby]
Uses FRAMEWATCH_KAFKA_BOOTSTRAP / FRAMEWATCH_REDIS_URL when both are set (fresh topic prefix),
else a throwaway local Kafka + Redis. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from framewatch import kafkaio, records
from framewatch.local import KafkaBroker, RedisServer, ensure_jars, free_port
from framewatch.records import Decision, Scores
from framewatch.settings import Settings, load_settings, to_env

FAILOVER_GOAL_S = 30.0
PARTITIONS = 3
SESSION_TIMEOUT_S = 6.0
LOG_LEVEL = os.environ.get("FAILOVER_LOG_LEVEL", "WARNING")  # INFO: Faust's recovery lines
SEED = "seed-account-0000000"  # the template's account id; generated ids have its length
OPTIONS: dict[str, dict[str, Any]] = {
    "memory": {"table_store": "memory://", "table_standby_replicas": 0},
    "rocksdb": {"table_store": "rocksdb://", "table_standby_replicas": 0},
    "standby": {"table_store": "memory://", "table_standby_replicas": 1},
}


def say(msg: str) -> None:
    print(f"failover: {msg}", file=sys.stderr, flush=True)


def _red(stream: str) -> bytes:
    t = time.time()
    return records.encode(Scores(frame_id=f"{stream}-f0", stream_id=stream, account_id="probe",
                                 seq=0, captured_at=t, scored_at=t,
                                 scores={"child_safety.csam": 0.9}))  # fmt: skip


class Run:
    """One option on its own topics: workers, probes and the decisions they answer."""

    def __init__(self, base: Settings, option: str, log_dir: Path) -> None:
        self.option = option
        self.s = base.model_copy(
            update={
                "topics": base.topics.model_copy(update={"prefix": f"fo-{uuid.uuid4().hex[:6]}."}),
                "streams": base.streams.model_copy(
                    update={**OPTIONS[option], "session_timeout_s": SESSION_TIMEOUT_S}
                ),
            }
        )
        self.log_dir = log_dir
        self.decided: dict[str, float] = {}
        self.workers: list[subprocess.Popen[bytes]] = []

    def worker(self, data_dir: Path) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEWATCH_")}
        env.update(to_env(self.s))
        env.update(FRAMEWATCH_STREAMS__DATA_DIR=str(data_dir), FRAMEWATCH_LOG_LEVEL=LOG_LEVEL)
        log = self.log_dir / f"{self.option}-{len(self.workers)}.log"
        p = subprocess.Popen([sys.executable, "-m", "framewatch.cli", "streams", "worker"],
                             env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
        self.workers.append(p)
        return p

    async def _read_decisions(self) -> None:
        cons = kafkaio.consumer(self.s, self.s.topics.name("decisions"), group_id=None,
                                auto_offset_reset="earliest")  # fmt: skip
        await cons.start()
        try:
            while True:
                for msgs in (await cons.getmany(timeout_ms=100)).values():
                    for m in msgs:
                        d = records.decode(m.value)
                        if isinstance(d, Decision):
                            self.decided.setdefault(d.stream_id, time.monotonic())
        finally:
            await cons.stop()

    async def decided_everywhere(self, prod: Any, tag: str, since: float, limit: float) -> float:
        """Seconds from ``since`` until a probe on every scores partition, produced after
        ``since`` (one a partition every 0.25 s), is decided."""
        topic, waiting, n = self.s.topics.name("scores"), set(range(PARTITIONS)), 0
        sent: dict[str, int] = {}
        end = time.monotonic() + limit
        while waiting and time.monotonic() < end:
            for p in waiting:
                sid = f"{tag}-{p}-{n}"
                await prod.send(topic, _red(sid), key=sid.encode(), partition=p)
                sent[sid] = p
            n += 1
            await asyncio.sleep(0.25)
            waiting -= {p for sid, p in sent.items() if sid in self.decided}
        if waiting:
            raise SystemExit(f"{self.option}: partitions {sorted(waiting)} not decided in "
                             f"{limit:.0f}s; see {self.log_dir}")  # fmt: skip
        return max(min(self.decided[s] for s, p in sent.items() if p == q and s in self.decided)
                   for q in range(PARTITIONS)) - since  # fmt: skip

    async def template(self, prod: Any) -> tuple[bytes, bytes]:
        """One real ledger changelog row (key, value), written by a worker for SEED."""
        t = time.time()
        sc = Scores(frame_id="seed-f0", stream_id="seed", account_id=SEED, seq=0,
                    captured_at=t, scored_at=t, scores={"child_safety.csam": 0.9})  # fmt: skip
        await prod.send_and_wait(self.s.topics.name("scores"), records.encode(sc), key=b"seed")
        end = time.monotonic() + 300
        while "seed" not in self.decided:  # then the worker has made its changelog topics
            if time.monotonic() > end:
                raise SystemExit(f"the seed worker never decided; see {self.log_dir}")
            await asyncio.sleep(0.2)
        cons = kafkaio.consumer(self.s, self.s.topics.changelog("account-ledger"),
                                group_id=None, auto_offset_reset="earliest")  # fmt: skip
        await cons.start()
        try:
            while time.monotonic() < end:
                for msgs in (await cons.getmany(timeout_ms=500)).values():
                    for m in msgs:
                        if m.value and SEED.encode() in m.key:
                            return m.key, m.value
            raise SystemExit(f"no ledger row for the seed account; see {self.log_dir}")
        finally:
            await cons.stop()

    async def fill(self, prod: Any, key: bytes, value: bytes, n: int) -> float:
        """n ledger rows, each the template under its own account id; returns seconds taken."""
        topic = self.s.topics.changelog("account-ledger")
        t0 = time.monotonic()
        batch = []
        for i in range(n):
            acct = f"a{i:0{len(SEED) - 1}d}".encode()
            batch.append(await prod.send(topic, value.replace(SEED.encode(), acct),
                                         key=key.replace(SEED.encode(), acct)))  # fmt: skip
            if len(batch) >= 20_000:
                await asyncio.gather(*batch)
                batch.clear()
                if i % 200_000 < 20_000:
                    say(f"{self.option}: {i + 1} of {n} accounts written")
        await asyncio.gather(*batch)
        return time.monotonic() - t0

    async def run(self, n: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        await kafkaio.create_topics(self.s)
        prod = kafkaio.producer(self.s, linger_ms=20)
        await prod.start()
        reader = asyncio.create_task(self._read_decisions())
        tmp = Path(tempfile.mkdtemp(prefix=f"fo-{self.option}-"))
        try:
            seed = self.worker(tmp / "seed")
            key, value = await self.template(prod)
            seed.send_signal(signal.SIGTERM)
            seed.wait(60)
            say(f"{self.option}: template row {len(key)}+{len(value)} bytes; writing {n} accounts")
            out["fill_s"] = round(await self.fill(prod, key, value, n), 1)
            disk = tmp / "w1"  # rocksdb://: the restarted worker finds its own files here
            t0 = time.monotonic()
            first = self.worker(disk)
            standby = (
                self.worker(tmp / "w2") if OPTIONS[self.option]["table_standby_replicas"] else None
            )
            out["cold_start_s"] = round(await self.decided_everywhere(prod, "cold", t0, 1800), 1)
            if standby is not None:  # the standby replays the changelog too: let it catch up
                await asyncio.sleep(max(10.0, out["cold_start_s"]))
                await self.decided_everywhere(prod, "warm", time.monotonic(), 600)
            say(f"{self.option}: cold start {out['cold_start_s']} s; killing the worker")
            first.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            first.wait(30)
            if standby is None:
                self.worker(disk)
            out["failover_s"] = round(await self.decided_everywhere(prod, "fo", killed, 1800), 1)
            say(f"{self.option}: decides again {out['failover_s']} s after the kill")
        finally:
            for w in self.workers:
                if w.poll() is None:
                    w.kill()
                    w.wait(30)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await prod.stop()
            await self.drop_topics()
        return out

    async def drop_topics(self) -> None:
        """This run's topics go: the broker may be shared, and a million rows weigh."""
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(**kafkaio.client_config(self.s))
        await admin.start()
        try:
            mine = [t for t in await admin.list_topics() if t.startswith(self.s.topics.prefix)]
            await admin.delete_topics(mine)
        finally:
            await admin.close()


@contextmanager
def stack() -> Iterator[Settings]:
    """The configured Kafka and Redis, or a throwaway local pair."""
    if os.environ.get("FRAMEWATCH_KAFKA_BOOTSTRAP") and os.environ.get("FRAMEWATCH_REDIS_URL"):
        yield load_settings(topics={"partitions": PARTITIONS, "account_partitions": PARTITIONS},
                            metrics={"enabled": False})  # fmt: skip
        return
    with tempfile.TemporaryDirectory() as tmp:
        base = load_settings()
        broker = KafkaBroker(ensure_jars(base.local.cache_dir, base.local.kafka_version),
                             Path(tmp) / "kafka", free_port(), free_port(), base.local.kafka_heap)  # fmt: skip
        redis = RedisServer(Path(tmp) / "redis", free_port())
        say("starting Kafka + Redis ...")
        broker.start()
        redis.start()
        try:
            yield load_settings(kafka_bootstrap=broker.bootstrap, redis_url=redis.url,
                                topics={"partitions": PARTITIONS, "account_partitions": PARTITIONS},
                                metrics={"enabled": False})  # fmt: skip
        finally:
            broker.stop(keep_data=False)
            redis.stop(keep_data=False)


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=100_000, help="accounts in the ledger")
    ap.add_argument("--options", default=",".join(OPTIONS),
                    help=f"comma list of {', '.join(OPTIONS)}")  # fmt: skip
    args = ap.parse_args()
    res: dict[str, Any] = {"accounts": args.accounts, "partitions": PARTITIONS,
                           "session_timeout_s": SESSION_TIMEOUT_S,
                           "failover_goal_s": FAILOVER_GOAL_S, "cpus": os.cpu_count()}  # fmt: skip
    logs = Path(tempfile.mkdtemp(prefix="framewatch-failover-"))
    with stack() as base:
        for option in args.options.split(","):
            say(f"{option}: {OPTIONS[option]}")
            for k, v in asyncio.run(Run(base, option, logs).run(args.accounts)).items():
                res[f"{option}_{k}"] = v
    res["load_avg_1m"] = round(os.getloadavg()[0], 2)
    say(f"worker logs in {logs}")
    for k, v in res.items():
        print(f"{k:>28}: {v}")
    fails = [o for o in args.options.split(",") if res[f"{o}_failover_s"] > FAILOVER_GOAL_S]
    verdict = f"not {', '.join(fails)}" if fails else "all"
    print(f"{'within the ceiling':>28}: {verdict}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
