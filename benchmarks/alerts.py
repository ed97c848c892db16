"""Benchmark: alerts/s delivered to a local HTTP sink, and alert produced -> HTTP received latency.

Runs the real router (in-process) against a real Kafka broker and Redis: FRAMEWATCH_KAFKA_BOOTSTRAP
/ FRAMEWATCH_REDIS_URL when set, otherwise it starts its own on free ports (like the tests).
The ceiling printed alongside is the same sink hit by plain aiohttp posts (no Kafka, no Redis).
The last line is one JSON object.

    python benchmarks/alerts.py --alerts 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from aiohttp import web

# run as a script, this file's folder comes first on sys.path and its name hides the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
sys.modules.pop("alerts", None)

from alerts.router import Router  # noqa: E402
from alerts.routing import parse  # noqa: E402
from framewatch import kafkaio, records  # noqa: E402
from framewatch.local import KafkaBroker, RedisServer, ensure_jars, free_port  # noqa: E402
from framewatch.settings import load_settings  # noqa: E402


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] if xs else float("nan")


async def bench(
    n: int, paced_n: int, paced_rate: float, bootstrap: str, redis_url: str, tmp: Path
) -> dict[str, float]:
    received: dict[str, float] = {}

    async def hook(request: web.Request) -> web.Response:
        rec = json.loads(await request.read())
        received.setdefault(rec.get("incident_id", uuid.uuid4().hex), time.time())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"

    # ceiling: the sink alone, 64 concurrent posts
    async with aiohttp.ClientSession() as http:
        body = b'{"incident_id":"x"}'
        sem = asyncio.Semaphore(64)

        async def one() -> None:
            async with sem, http.post(url, data=body) as r:
                await r.read()

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        ceiling = n / (time.perf_counter() - t0)
    received.clear()

    routing_file = tmp / "routing.yaml"
    routing_file.write_text(
        f"sinks:\n  hook: {{type: webhook, url: '{url}', secret: bench}}\n"
        "routes:\n  - {name: all, sinks: [hook]}\n"
    )
    prefix = f"bench-{uuid.uuid4().hex[:6]}"
    s = load_settings(
        kafka_bootstrap=bootstrap, redis_url=redis_url, redis_prefix=prefix + ":",
        topics={"prefix": prefix + "."}, metrics={"enabled": False},
        alerts={"routing_file": routing_file, "http_port": 0, "rate_window_s": 0},
    )  # fmt: skip
    await kafkaio.create_topics(s)
    stop = asyncio.Event()
    router = Router(s, parse(routing_file.read_text()))
    task = asyncio.create_task(router.run(stop))
    # warm-up: one alert through so the consumer group has joined
    p = kafkaio.producer(s)
    await p.start()
    topic = s.topics.name("alerts")

    def mk(i: int, tag: str) -> records.Alert:
        t = records.now()
        return records.Alert(incident_id=f"{tag}-{i}", severity="high", category="violence",
                             red_line=False, stream_id=f"s{i}", account_id=f"a{i}",
                             summary="bench", captured_at=t, raised_at=t)  # fmt: skip

    await p.send_and_wait(topic, records.encode(mk(0, "warm")), key=b"warm")
    while "warm-0" not in received:
        await asyncio.sleep(0.05)
    sent: dict[str, float] = {}
    t0 = time.time()
    for i in range(n):
        a = mk(i, "b")
        sent[a.incident_id] = a.raised_at
        await p.send(topic, records.encode(a), key=a.incident_id.encode())
        if i % 500 == 0:
            print(f"produced {i}/{n}", file=sys.stderr)
    await p.flush()
    deadline = time.time() + 120
    while sum(1 for k in sent if k in received) < n and time.time() < deadline:
        await asyncio.sleep(0.05)
    got = [k for k in sent if k in received]
    elapsed = max(received[k] for k in got) - t0
    burst = [(received[k] - sent[k]) * 1000 for k in got]
    # latency at a steady rate (what on-call sees), not queueing behind a burst
    paced: dict[str, float] = {}
    for i in range(paced_n):
        a = mk(i, "p")
        paced[a.incident_id] = a.raised_at
        await p.send_and_wait(topic, records.encode(a), key=a.incident_id.encode())
        await asyncio.sleep(1 / paced_rate)
    deadline = time.time() + 60
    while sum(1 for k in paced if k in received) < paced_n and time.time() < deadline:
        await asyncio.sleep(0.05)
    lat = [(received[k] - paced[k]) * 1000 for k in paced if k in received]
    await p.stop()
    stop.set()
    await task
    await runner.cleanup()
    return {
        "alerts": n,
        "delivered": len(got),
        "alerts_per_s": round(len(got) / elapsed, 1),
        "latency_ms_p50": round(statistics.median(lat), 1),
        "latency_ms_p95": round(_pct(lat, 95), 1),
        "ceiling_sink_posts_per_s": round(ceiling, 1),
        "burst_latency_ms_p50": round(statistics.median(burst), 1),
        "burst_latency_ms_p95": round(_pct(burst, 95), 1),
        "paced_rate_per_s": paced_rate,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--alerts", type=int, default=2000, help="burst size for alerts/s (2000)")
    ap.add_argument("--paced", type=int, default=200, help="alerts sent paced for latency (200)")
    ap.add_argument("--rate", type=float, default=50.0, help="pace of those, per second (50)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        broker = redis = None
        bootstrap = os.environ.get("FRAMEWATCH_KAFKA_BOOTSTRAP")
        redis_url = os.environ.get("FRAMEWATCH_REDIS_URL")
        try:
            if not bootstrap:
                base = load_settings()
                jars = ensure_jars(base.local.cache_dir, base.local.kafka_version)
                broker = KafkaBroker(jars, tmp / "kafka", free_port(), free_port(), "512m")
                print("starting a local Kafka broker...", file=sys.stderr)
                broker.start()
                bootstrap = broker.bootstrap
            if not redis_url:
                redis = RedisServer(tmp / "redis", free_port())
                redis.start()
                redis_url = redis.url
            result = asyncio.run(
                bench(args.alerts, args.paced, args.rate, bootstrap, redis_url, tmp)
            )
        finally:
            if broker:
                broker.stop(keep_data=False)
            if redis:
                redis.stop(keep_data=False)
    print(
        f"{result['delivered']}/{result['alerts']} alerts delivered: {result['alerts_per_s']}/s "
        f"(ceiling, sink alone: {result['ceiling_sink_posts_per_s']}/s); latency p50 "
        f"{result['latency_ms_p50']} ms, p95 {result['latency_ms_p95']} ms at {args.rate}/s "
        f"(burst: p50 {result['burst_latency_ms_p50']} ms, p95 {result['burst_latency_ms_p95']} ms)",
        file=sys.stderr,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
