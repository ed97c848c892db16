"""N concurrent real-time streams at 1 fps through the whole pipeline on this machine.

Every stream is an edited copy of the banked chair video, so each gets one red-line block: we
report frame capture -> decision produced (one per stream), capture -> scores produced (every
frame), frames scored / frames sampled, and CPU seconds per stream-second of the stage processes.
Starts its own Kafka and Redis unless FRAMEWATCH_KAFKA_BOOTSTRAP / FRAMEWATCH_REDIS_URL are set.

    python benchmarks/e2e.py [--streams 1,4,8,16] [--seconds 15]

The last line printed is one JSON object: {"results": [...], "provider": ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from devkit.demo import Pipeline, make_edited_copy
from devkit.testdata import testdata_dir
from framewatch.local import KafkaBroker, RedisServer, ensure_jars, free_port
from framewatch.settings import load_settings

GOAL = "p95 <= 1000 ms at 8 streams on CPU, no frame lost"


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(q * len(v)))], 1)


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError):
            pass
    return total


def children_of(pid: int) -> list[int]:
    out = [pid]
    try:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            out += children_of(int(child))
    except OSError:
        pass
    return out


async def bench(counts: list[int], seconds: float) -> dict[str, object]:
    base = load_settings()
    started: list[KafkaBroker | RedisServer] = []
    tmp = Path(tempfile.mkdtemp(prefix="fw-bench-e2e-"))
    bootstrap = os.environ.get("FRAMEWATCH_KAFKA_BOOTSTRAP")
    redis_url = os.environ.get("FRAMEWATCH_REDIS_URL")
    if not bootstrap:
        jars = ensure_jars(base.local.cache_dir, base.local.kafka_version)
        broker = KafkaBroker(jars, tmp / "kafka", free_port(), free_port(), base.local.kafka_heap)
        broker.start()
        started.append(broker)
        bootstrap = broker.bootstrap
    if not redis_url:
        redis = RedisServer(tmp / "redis", free_port())
        redis.start()
        started.append(redis)
        redis_url = redis.url
    run = uuid.uuid4().hex[:6]
    settings = load_settings(
        kafka_bootstrap=bootstrap, redis_url=redis_url, redis_prefix=f"bench-{run}:",
        topics={"prefix": f"bench-{run}."},
        metrics={"ingest_port": 0, "scoring_port": 0, "streams_port": 0, "alerts_port": 0},
    )  # fmt: skip
    pipe = Pipeline(settings, say=lambda m: print(m, file=sys.stderr))
    results = []
    try:
        chair = testdata_dir() / "videos" / "chair-orig-22-sd-bar.mp4"
        edited = make_edited_copy(chair, pipe.tmp / "chair-edited.mp4", seconds)
        await pipe.setup([chair])
        pids = [pid for p in pipe.procs.values() for pid in children_of(p.pid)]
        for n in counts:
            names = {f"bench-{n}-{i}": edited for i in range(n)}
            cpu0, t0 = cpu_seconds(pids), time.monotonic()
            print(f"{n} stream(s) for {seconds:.0f} s ...", file=sys.stderr)
            await pipe.stream(names)
            await pipe.drain(timeout=60, quiet=2)
            cpu = cpu_seconds(pids) - cpu0
            wall = time.monotonic() - t0
            frames = {f.frame_id: f for f in pipe.frames.values() if f.stream_id in names}
            scores = [s for s in pipe.scores if s.stream_id in names]
            decisions = [d for d in pipe.decisions if d.stream_id in names and d.action == "block"]
            lat = [(d.decided_at - d.captured_at) * 1000 for d in decisions]
            score_lat = [(s.scored_at - s.captured_at) * 1000 for s in scores]
            results.append({
                "streams": n,
                "p50_ms": pct(lat, 0.50), "p95_ms": pct(lat, 0.95), "p99_ms": pct(lat, 0.99),
                "score_p50_ms": pct(score_lat, 0.5), "score_p95_ms": pct(score_lat, 0.95),
                "score_p99_ms": pct(score_lat, 0.99),
                "frames_sampled": len(frames),
                "frames_scored": len({s.frame_id for s in scores} & set(frames)),
                "streams_blocked": len({d.stream_id for d in decisions}),
                "cpu_s_per_stream_s": round(cpu / (n * wall), 3),
            })  # fmt: skip
            print(json.dumps(results[-1]), file=sys.stderr)
    finally:
        await pipe.close()
        for proc in started:
            proc.stop(keep_data=False)
    provider = next(
        (m.split("@")[0] for s in pipe.scores for m in s.models.values()), None
    )  # the model names; the provider itself is logged and exported by the scorer
    return {"results": results, "provider": os.environ.get("FRAMEWATCH_BENCH_PROVIDER", "CPUExecutionProvider"),
            "models": provider, "goal": GOAL, "machine": f"{os.cpu_count()} cores"}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--streams", default="1,4,8,16", help="comma-separated stream counts")
    ap.add_argument("--seconds", type=float, default=15, help="length of each stream")
    args = ap.parse_args()
    out = asyncio.run(bench([int(x) for x in args.streams.split(",")], args.seconds))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
