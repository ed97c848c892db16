"""Benchmark the streams worker end to end on a throwaway local Kafka + Redis.

1. records_per_s: N clean scores records pre-produced, then the time one worker takes to consume
   and commit them all (all tables on). Ceiling: the issue's goal of 2,000 records/s per worker.
2. latency at a steady 500 records/s: every record is a new stream whose first frame blocks
   (a red line), so each one yields a decision; latency = decision received - score produced.
   Goal: p95 <= 100 ms.
The last line printed is one JSON object.  Usage: python benchmarks/streams.py [--records N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from framewatch import kafkaio, records
from framewatch.local import KafkaBroker, RedisServer, ensure_jars, free_port
from framewatch.records import Decision, Scores
from framewatch.settings import Settings, load_settings


def scores(i: int, stream: str, cats: dict[str, float]) -> bytes:
    t = time.time()
    return records.encode(
        Scores(
            frame_id=f"{stream}-{i}",
            stream_id=stream,
            account_id=f"a{i % 50}",
            seq=i,
            captured_at=t,
            scored_at=t,
            scores=cats,
        )
    )


async def committed(settings: Settings, group: str) -> int:
    admin = AIOKafkaAdminClient(**kafkaio.client_config(settings))
    await admin.start()
    try:
        offs = await admin.list_consumer_group_offsets(group)
        topic = settings.topics.name("scores")
        return sum(m.offset for tp, m in offs.items() if tp.topic == topic and m.offset > 0)
    finally:
        await admin.close()


async def main_async(settings: Settings, n: int, rate: int, seconds: float, log: Path) -> dict:
    await kafkaio.create_topics(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEWATCH_")}
    env.update(
        FRAMEWATCH_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        FRAMEWATCH_REDIS_URL=settings.redis_url.get_secret_value(),
        FRAMEWATCH_TOPICS__PREFIX=settings.topics.prefix,
        FRAMEWATCH_TOPICS__PARTITIONS=str(settings.topics.partitions),
        FRAMEWATCH_TOPICS__ACCOUNT_PARTITIONS=str(settings.topics.account_partitions),
        FRAMEWATCH_METRICS__ENABLED="false",
        FRAMEWATCH_STREAMS__DATA_DIR=str(Path(tempfile.mkdtemp()) / "faust"),
        FRAMEWATCH_LOG_LEVEL="WARNING",
    )
    prod = kafkaio.producer(settings, linger_ms=2)
    await prod.start()
    cons = kafkaio.consumer(
        settings, settings.topics.name("decisions"), group_id=None, auto_offset_reset="earliest"
    )
    await cons.start()
    worker = subprocess.Popen(
        [sys.executable, "-m", "framewatch.cli", "streams", "worker"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        # warm-up: wait until the worker answers
        print("waiting for the worker ...", file=sys.stderr)
        t0 = time.monotonic()
        got = False
        while not got and time.monotonic() - t0 < 120:
            await prod.send_and_wait(
                settings.topics.name("scores"),
                scores(0, f"warm{time.time_ns()}", {"child_safety.csam": 0.9}),
            )
            batch = await cons.getmany(timeout_ms=2000)
            got = any(batch.values())
        if not got:
            raise SystemExit(f"worker did not answer; see {log}")
        group = f"{settings.topics.prefix}framewatch-streams"
        base = await committed(settings, group)
        # 1. throughput
        print(f"producing {n} records ...", file=sys.stderr)
        futs = [
            await prod.send(
                settings.topics.name("scores"),
                scores(i, f"bulk{i % 200}", {"violence.gore": 0.05}),
                key=f"bulk{i % 200}".encode(),
            )
            for i in range(n)
        ]
        await asyncio.gather(*futs)
        t1 = time.monotonic()
        while await committed(settings, group) < base + n:
            await asyncio.sleep(0.2)
            if time.monotonic() - t1 > 300:
                break
        done = await committed(settings, group) - base
        rps = done / (time.monotonic() - t1)
        # 2. latency at a steady rate
        print(f"steady {rate}/s for {seconds}s ...", file=sys.stderr)
        lat: list[float] = []

        async def reader() -> None:
            end = time.monotonic() + seconds + 5
            while time.monotonic() < end:
                batch = await cons.getmany(timeout_ms=200)
                now = time.time()
                for msgs in batch.values():
                    for m in msgs:
                        d = records.decode(m.value)
                        if isinstance(d, Decision) and d.stream_id.startswith("lat"):
                            lat.append((now - d.captured_at) * 1000)

        task = asyncio.create_task(reader())
        start = time.monotonic()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sid = f"lat{i}"
            await prod.send(
                settings.topics.name("scores"),
                scores(0, sid, {"child_safety.csam": 0.9}),
                key=sid.encode(),
            )
        await task
    finally:
        worker.terminate()
        worker.wait(20)
        await cons.stop()
        await prod.stop()
    lat.sort()

    def pct(p: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 1) if lat else None

    return {
        "records": n,
        "records_per_s": round(rps, 1),
        "records_per_s_goal": 2000,
        "latency_samples": len(lat),
        "latency_ms_p50_at_500": pct(0.5),
        "latency_ms_p95_at_500": pct(0.95),
        "latency_ms_p99_at_500": pct(0.99),
        "latency_ms_p95_goal": 100,
    }


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--rate", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = load_settings()
        broker = KafkaBroker(
            ensure_jars(base.local.cache_dir, base.local.kafka_version),
            Path(tmp) / "kafka",
            free_port(),
            free_port(),
            base.local.kafka_heap,
        )
        redis = RedisServer(Path(tmp) / "redis", free_port())
        print("starting Kafka + Redis ...", file=sys.stderr)
        broker.start()
        redis.start()
        try:
            settings = load_settings(
                kafka_bootstrap=broker.bootstrap,
                redis_url=redis.url,
                topics={"prefix": "bench.", "partitions": 3, "account_partitions": 3},
                metrics={"enabled": False},
            )
            res = asyncio.run(
                main_async(
                    settings,
                    args.records,
                    args.rate,
                    args.seconds,
                    Path(tempfile.gettempdir()) / "framewatch-bench-streams-worker.log",
                )
            )
        finally:
            broker.stop(keep_data=False)
            redis.stop(keep_data=False)
    for k, v in res.items():
        print(f"{k:>24}: {v}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
