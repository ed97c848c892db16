"""Benchmark the streams worker end to end on a throwaway local Kafka + Redis.

One `framewatch streams worker` subprocess, all tables on, four phases, each starting with the
worker idle (every topic its group reads committed to the end: scores, the by-account hop,
audit-in, so work a phase leaves behind never lands in the next one):

1. mix latency at a steady --rate (1,000/s): --rate/5 live streams at 5 frames/s, each living
   30 frames (lives staggered), six categories scored per frame; 40 % of streams stay benign,
   35 % go to review (the worker marks them hot in Redis), 15 % block by smoothing, 10 % hit a
   red line (block + alert); the bad part of a life is short, so ~85 % of records are benign.
   Goal: p95 <= 100 ms. Also the worker's CPU ms per record in the phase.
2. records_per_s: a backlog of N records in the realistic mix, timed from the first record
   produced until the worker is idle again (it commits only after its outputs are flushed, so
   this is sustained, at-least-once throughput). Goal: 5,000 records/s per worker.
3. worst_records_per_s: the same for N/4 worst-case records: every record is a new stream
   whose first frame is a red line, so every record yields a block with its statement, an
   alert, a ledger strike, often an enforcement step, and their audit links.
4. worst-case latency at the same steady rate (no goal: it shows where a worker saturates).
5. the Faust floor (--floor-records, 0 skips it): a minimal Faust worker with the real worker's
   App settings (streams.app.app_config: broker, consumer, producer, commit, serializers; the
   same send-error sensor and producer flush), no tables, and a no-op agent, through a backlog
   of the same mix, timed the same way as phase 2: once iterating ``stream.events()`` one by
   one (what the worker's agents do), once ``stream.take_events(FLOOR_TAKE, within=...)``
   (batches). Its records/s and CPU ms per record are the ceiling any agent on Faust reaches on
   this box; printed next to the worker's with the ratio. A third run ("pure") adds to the
   one-by-one agent what no design can skip: decoding each record and the worker's own state
   machine (streams.processor.Processor.on_scores) on states in a dict, with no table, send,
   pin or Redis mark; the rest of the worker's CPU a record is the plumbing around them.

Latency = decision received by a consumer - score record produced (the scorer's side). Each
latency phase waits for every transition it expects, so a worker that falls behind shows up in
p95 instead of being cut off; missing ones are counted. The box's load average is printed with
each phase (other work on a shared box skews every rate; CPU ms per record holds up better).
The last line printed is one JSON object.

Usage: python benchmarks/streams.py [--records N] [--rate R] [--seconds S] [--worst-seconds S]
       [--floor-records N] [--profile FILE]
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
import zlib
from pathlib import Path
from typing import Any

# run as a script, this file's folder comes first on sys.path and its name hides the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

from aiokafka import AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402

from framewatch import kafkaio, records  # noqa: E402
from framewatch.local import KafkaBroker, RedisServer, ensure_jars, free_port  # noqa: E402
from framewatch.records import Decision, Scores  # noqa: E402
from framewatch.settings import Settings, load_settings, to_env  # noqa: E402

RECORDS_GOAL = 5000
FLOOR_MODES = ("events", "take_events", "pure")
FLOOR_TAKE = (500, 0.05)  # take_events: up to this many records, or what came within this (s)
P95_GOAL_MS = 100
FRAMES_PER_STREAM = 30
BENIGN = {
    "sexual.explicit": 0.02,
    "suggestive": 0.06,
    "violence.gore": 0.03,
    "violence.weapons": 0.01,
    "hate.speech": 0.02,
    "drugs": 0.01,
}


def _scores(stream: str, seq: int, account: str, cats: dict[str, float]) -> bytes:
    t = time.time()
    return records.encode(
        Scores(
            frame_id=f"{stream}-f{seq}",
            stream_id=stream,
            account_id=account,
            seq=seq,
            captured_at=t,
            scored_at=t,
            scores=cats,
        )
    )


def mix(prefix: str, i: int, live: int) -> tuple[str, int, dict[str, float], bool]:
    """Record i of the realistic mix: (stream, seq, scores, is this frame a transition).

    ``live`` streams take turns; each lives FRAMES_PER_STREAM frames, their lives staggered so
    histories of every age are in play. 40 % of streams stay benign all their life; the rest
    turn bad from a frame of their own until they end: 35 % to review (hate 3 of 5 over 0.5),
    15 % to block (gore 3 of 5 over 0.85), 10 % on a red line (blocks on its first frame).
    """
    slot = i % live
    gen, seq = divmod(i // live + slot * FRAMES_PER_STREAM // live, FRAMES_PER_STREAM)
    sid = f"{prefix}{gen}-{slot}"
    h = zlib.crc32(sid.encode())
    kind, start = h % 100, 2 + (h // 100) % (FRAMES_PER_STREAM - 8)
    cats = dict(BENIGN)
    if gen == 0 and slot * FRAMES_PER_STREAM // live > 0:
        return sid, seq, cats, False  # joined mid-life: its start is not ours to judge
    if kind < 10 and seq >= start:
        cats["child_safety.csam"] = 0.9
    elif kind < 25 and seq >= start:
        cats["violence.gore"] = 0.95
    elif kind < 60 and seq >= start:
        cats["hate.speech"] = 0.6
    hit = kind < 60 and seq == (start if kind < 10 else start + 2)
    return sid, seq, cats, hit


def account_of(stream: str) -> str:
    return f"acct{zlib.crc32(stream.encode()) % 1000}"


def floor_topic(settings: Settings, mode: str) -> str:
    return f"{settings.topics.prefix}floor-{mode}"


def floor_worker(mode: str) -> None:
    """The floor: a Faust worker with the real worker's App settings and a no-op agent (run in
    its own process, settings from the environment). Nothing here is in streams/: it is the
    yardstick, not the worker."""
    import faust

    from streams import guard
    from streams.app import app_config

    settings = load_settings()
    cfg = app_config(settings)
    cfg["datadir"] = str(settings.streams.data_dir / f"floor-{mode}")
    settings.streams.data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(f"{settings.topics.app_id()}-floor-{mode}", **cfg)
    topic = app.topic(
        floor_topic(settings, mode),
        partitions=settings.topics.partitions,
        key_serializer="raw",
        value_serializer="raw",
    )
    app.sensors.add(guard.ExitOnSendError("floor"))
    guard.drain_before_commit(app.producer)

    if mode == "events":

        @app.agent(topic)
        async def floor(stream: faust.StreamT) -> None:
            async for _event in stream.events():
                pass

    elif mode == "pure":
        from framewatch import scope
        from streams.processor import Processor

        proc = Processor(settings)
        states: dict[str, Any] = {}

        @app.agent(topic)
        async def floor_pure(stream: faust.StreamT) -> None:
            async for event in stream.events():
                sc = records.decode(event.value, Scores)
                key = scope.stream(sc)
                states[key] = proc.on_scores(states.get(key), sc).state

    else:

        @app.agent(topic)
        async def floor_take(stream: faust.StreamT) -> None:
            async for _batch in stream.take_events(*FLOOR_TAKE):
                pass

    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


class Decisions:
    """Reads the decisions topic in the background; latency samples per stream-id prefix."""

    def __init__(self, settings: Settings) -> None:
        self.cons = kafkaio.consumer(
            settings, settings.topics.name("decisions"), group_id=None, auto_offset_reset="latest"
        )
        self.lat: dict[str, list[float]] = {}
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.cons.start()
        await self.cons.seek_to_end()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.cons.getmany(timeout_ms=100)
            now = time.time()
            for msgs in batch.values():
                for m in msgs:
                    d = records.decode(m.value)
                    if isinstance(d, Decision):
                        tag = d.stream_id.split(":", 1)[0]
                        self.lat.setdefault(tag, []).append((now - d.captured_at) * 1000)

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        await self.cons.stop()


def cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) a process used so far: a figure that, unlike records/s,
    holds up on a box shared with other work. Linux only."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Behind(Exception):
    """The worker did not catch up in time: the phase's figures would be meaningless."""


def sched_s(pid: int) -> tuple[float, float] | None:
    """Seconds the process's threads ran on a CPU and waited, runnable, for one (Linux
    schedstat). Waiting time is what a shared box adds: a worker that waits for a CPU while
    records queue up is starved, not holding them."""
    run = wait = 0.0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            fields = (task / "schedstat").read_text().split()
            run, wait = run + int(fields[0]) / 1e9, wait + int(fields[1]) / 1e9
    except OSError:
        return None
    return run, wait


class Bench:
    def __init__(self, settings: Settings, log: Path, profile: Path | None) -> None:
        self.settings, self.log, self.profile = settings, log, profile
        self.topic = settings.topics.name("scores")
        self.group = settings.topics.app_id()
        self.produced = 0
        self.load0 = 0.0
        self.idle_cpu = 0.0  # CPU s a second the worker spends with nothing to do (timers)
        self.sent_per_s = 0.0  # how fast the last backlog was produced here
        self.shares: tuple[float | None, float | None] = (None, None)  # the last backlog's
        self.pid = 0
        self.admin: AIOKafkaAdminClient
        self.prod: AIOKafkaProducer
        self.decisions: Decisions
        self.ends: Any  # a group-less consumer for end offsets

    async def behind(self) -> int:
        """Records the worker has not committed: scores produced here, plus every other topic
        its group reads (internal hops, audit-in) up to its end."""
        offs = await self.admin.list_consumer_group_offsets(self.group)
        done = sum(m.offset for tp, m in offs.items() if tp.topic == self.topic and m.offset > 0)
        others = [tp for tp in offs if tp.topic != self.topic]
        ends = await self.ends.end_offsets(others) if others else {}
        return self.produced - done + sum(ends[tp] - max(0, offs[tp].offset) for tp in others)

    async def changelog_records(self) -> int:
        """Records in every table's changelog so far (their end offsets): what table writes
        cost the broker."""
        tps = [
            TopicPartition(name, p)
            for name, parts in self.settings.topics.changelogs_all().items()
            for p in range(parts)
        ]
        return sum((await self.ends.end_offsets(tps)).values())

    async def send(self, stream: str, value: bytes) -> None:
        await self.prod.send(self.topic, value, key=stream.encode())
        self.produced += 1

    async def drained(self, timeout: float = 300.0) -> float:
        """Wait until the worker committed everything produced so far; returns when it did."""
        await self.prod.flush()
        end = time.monotonic() + timeout
        while await self.behind() > 0:
            if time.monotonic() > end:
                raise Behind(f"the worker fell {timeout:.0f}s behind; see {self.log}")
            await asyncio.sleep(0.1)
        return time.monotonic()

    def worker(self) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEWATCH_")}
        env.update(to_env(self.settings))
        env.update(
            FRAMEWATCH_STREAMS__DATA_DIR=str(Path(tempfile.mkdtemp()) / "faust"),
            FRAMEWATCH_LOG_LEVEL="WARNING",
        )
        prof = ["-m", "cProfile", "-o", str(self.profile)] if self.profile else []
        return subprocess.Popen(
            [sys.executable, *prof, "-m", "framewatch.cli", "streams", "worker"],
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    async def warm_up(self) -> None:
        print("waiting for the worker ...", file=sys.stderr)
        end = time.monotonic() + 120
        while time.monotonic() < end:
            sid = f"warm:{time.time_ns()}"
            await self.send(sid, _scores(sid, 0, "warm", {"child_safety.csam": 0.9}))
            await asyncio.sleep(1.0)
            if self.decisions.lat.get("warm"):
                await self.drained()
                return
        raise SystemExit(f"worker did not answer; see {self.log}")

    async def idle(self, seconds: float = 5.0) -> float | None:
        """The worker's CPU with nothing to do (timers, heartbeats, fetch polls): on a starved
        box a phase drags on, and this fixed cost then inflates its CPU ms per record, so each
        phase also reports its figure net of it."""
        c0, t0 = cpu_s(self.pid), time.monotonic()
        await asyncio.sleep(seconds)
        c1, t1 = cpu_s(self.pid), time.monotonic()
        if c0 is None or c1 is None:
            return None
        self.idle_cpu = (c1 - c0) / (t1 - t0)
        return round(self.idle_cpu * 1000, 1)

    def net_ms(self, cpu: float, wall: float, n: int) -> float:
        """CPU ms a record once the idle cost of the phase's wall time is taken off."""
        return round(max(0.0, cpu - self.idle_cpu * wall) * 1000 / n, 3)

    async def throughput(
        self, n: int, worst: bool = False, tag: str = "tp:"
    ) -> tuple[float, float | None, float | None]:
        """records/s through a backlog of n, the worker's CPU ms per record, and that net of
        its idle cost."""
        print(f"backlog of {n} {'worst-case' if worst else 'mix'} records ...", file=sys.stderr)
        self.load0 = os.getloadavg()[0]
        c0, s0 = cpu_s(self.pid), sched_s(self.pid)
        t0 = time.monotonic()
        for i in range(n):
            if worst:
                sid, seq, cats = f"tpw:{i}", 0, {"child_safety.csam": 0.9}
            else:
                sid, seq, cats, _ = mix(tag, i, 100)
            await self.send(sid, _scores(sid, seq, account_of(sid), cats))
        self.sent_per_s = n / (time.monotonic() - t0)  # a rate near this one is the producer's
        wall = await self.drained() - t0
        c1, s1 = cpu_s(self.pid), sched_s(self.pid)
        # per second of the backlog: on a CPU, and runnable but waiting for one
        self.shares = (
            (round((s1[0] - s0[0]) / wall, 2), round((s1[1] - s0[1]) / wall, 2))
            if s0 and s1
            else (None, None)
        )
        if c0 is None or c1 is None:
            return n / wall, None, None
        return n / wall, round((c1 - c0) * 1000 / n, 3), self.net_ms(c1 - c0, wall, n)

    async def steady(self, tag: str, rate: int, seconds: float, worst: bool) -> dict[str, float]:
        print(f"{tag}: steady {rate}/s for {seconds:.0f}s ...", file=sys.stderr)
        load0 = os.getloadavg()[0]
        c0, s0, w0 = cpu_s(self.pid), sched_s(self.pid), time.monotonic()
        expected = 0
        start = time.monotonic()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if worst:
                sid, seq, cats, hit = f"{tag}:{i}", 0, {"child_safety.csam": 0.9}, True
            else:
                sid, seq, cats, hit = mix(f"{tag}:", i, max(1, rate // 5))
            expected += hit
            await self.send(sid, _scores(sid, seq, account_of(sid), cats))
        sent_s = time.monotonic() - start
        end = time.monotonic() + 120
        while len(self.decisions.lat.get(tag, [])) < expected and time.monotonic() < end:
            await asyncio.sleep(0.1)
        await self.drained()
        c1, s1, w1 = cpu_s(self.pid), sched_s(self.pid), time.monotonic()
        n = int(rate * seconds)
        share: dict[str, float] = {}
        if s0 and s1:  # per second of the phase: on a CPU, and runnable but waiting for one
            share[f"{tag}_worker_on_cpu_share"] = round((s1[0] - s0[0]) / (w1 - w0), 2)
            share[f"{tag}_worker_waiting_for_cpu_share"] = round((s1[1] - s0[1]) / (w1 - w0), 2)
        lat = sorted(self.decisions.lat.get(tag, []))

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 1) if lat else None

        return {
            f"{tag}_load_avg_1m": round(load0, 2),
            f"{tag}_rate_achieved": round(n / sent_s, 1),
            f"{tag}_worker_cpu_ms_per_record": (
                round((c1 - c0) * 1000 / n, 3) if c0 is not None and c1 is not None else None
            ),
            f"{tag}_worker_cpu_ms_per_record_net_of_idle": (
                self.net_ms(c1 - c0, w1 - w0, n) if c0 is not None and c1 is not None else None
            ),
            **share,
            f"{tag}_decisions": len(lat),
            f"{tag}_decisions_missing": max(0, expected - len(lat)),
            f"{tag}_latency_ms_p50": pct(0.5),
            f"{tag}_latency_ms_p95": pct(0.95),
            f"{tag}_latency_ms_p99": pct(0.99),
        }

    async def floor(self, mode: str, n: int) -> dict[str, object]:
        """The no-op floor worker through a backlog of n mix records, measured as phase 2."""
        topic, group = floor_topic(self.settings, mode), f"{self.group}-floor-{mode}"
        await kafkaio.create_topics(
            self.settings, keys=["scores"], extra={topic: self.settings.topics.partitions}
        )
        saved = self.topic, self.group, self.produced, self.pid, self.idle_cpu
        self.topic, self.group, self.produced = topic, group, 0
        log = self.log.with_suffix(f".floor-{mode}.log")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEWATCH_")}
        env.update(to_env(self.settings))
        env.update(FRAMEWATCH_STREAMS__DATA_DIR=str(Path(tempfile.mkdtemp()) / "faust"))
        prof = ["-m", "cProfile", "-o", f"{self.profile}.floor-{mode}"] if self.profile else []
        proc = subprocess.Popen(
            [sys.executable, *prof, str(Path(__file__).resolve()), "--floor-worker", mode],
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.pid = proc.pid
        key = f"floor_{mode}"
        try:
            print(f"floor ({mode}): waiting for the no-op worker ...", file=sys.stderr)
            sid, _, cats, _ = mix("flw:", 0, 1)
            await self.send(sid, _scores(sid, 0, account_of(sid), cats))
            await self.drained(120)
            idle = await self.idle()
            rps, cpu, net = await self.throughput(n, tag="fl:")
            return {
                f"{key}_records_per_s": round(rps, 1),
                f"{key}_produced_per_s": round(self.sent_per_s, 1),
                f"{key}_cpu_ms_per_record": cpu,
                f"{key}_cpu_ms_per_record_net_of_idle": net,
                f"{key}_idle_cpu_ms_per_s": idle,
                f"{key}_load_avg_1m": round(self.load0, 2),
                f"{key}_on_cpu_share": self.shares[0],
                f"{key}_waiting_for_cpu_share": self.shares[1],
            }
        except Behind as exc:
            print(f"floor ({mode}) stopped: {exc}", file=sys.stderr)
            return {f"{key}_stopped": str(exc)}
        finally:
            proc.terminate()
            proc.wait(60)
            self.topic, self.group, self.produced, self.pid, self.idle_cpu = saved

    async def run(
        self, n: int, rate: int, seconds: float, worst_seconds: float, floor_n: int = 0
    ) -> dict[str, object]:
        """The phases against one worker (clients are made here: they need the loop)."""
        self.admin = AIOKafkaAdminClient(**kafkaio.client_config(self.settings))
        self.prod = kafkaio.producer(self.settings, linger_ms=2)
        self.ends = kafkaio.consumer(self.settings, group_id=None)
        self.decisions = Decisions(self.settings)
        await kafkaio.create_topics(self.settings)
        await self.admin.start()
        await self.prod.start()
        await self.decisions.start()
        await self.ends.start()
        worker = self.worker()
        self.pid = worker.pid
        res: dict[str, object] = {"rate": rate, "mix_latency_ms_p95_goal": P95_GOAL_MS}
        try:
            await self.warm_up()
            res["worker_idle_cpu_ms_per_s"] = await self.idle()
            res.update(await self.steady("mix", rate, seconds, worst=False))
            logged = await self.changelog_records()
            rps, cpu, net = await self.throughput(n)
            res["backlog_changelog_records"] = await self.changelog_records() - logged
            res.update(records=n, records_per_s=round(rps, 1), records_per_s_goal=RECORDS_GOAL)
            res["worker_cpu_ms_per_record"] = cpu
            res["worker_cpu_ms_per_record_net_of_idle"] = net
            res["backlog_load_avg_1m"] = round(self.load0, 2)
            res["backlog_worker_on_cpu_share"] = self.shares[0]
            res["backlog_worker_waiting_for_cpu_share"] = self.shares[1]
            rps, cpu, net = await self.throughput(n // 4, worst=True)
            res["worst_records_per_s"] = round(rps, 1)
            res["worst_worker_cpu_ms_per_record"] = cpu
            res["worst_worker_cpu_ms_per_record_net_of_idle"] = net
            if worst_seconds > 0:
                res.update(await self.steady("worst", rate, worst_seconds, worst=True))
        except Behind as exc:  # report what was measured, and say which phase did not end
            print(f"stopped: {exc}", file=sys.stderr)
            res["stopped"] = str(exc)
        finally:
            worker.terminate()
            worker.wait(60)
        try:
            for mode in FLOOR_MODES if floor_n > 0 else ():
                res.update(await self.floor(mode, floor_n))
        finally:
            await self.ends.stop()
            await self.decisions.stop()
            await self.prod.stop()
            await self.admin.close()
        p95 = res.get("mix_latency_ms_p95")
        res["mix_latency_goal_met"] = p95 is not None and p95 <= P95_GOAL_MS  # type: ignore[operator]
        cpu = res.get("worker_cpu_ms_per_record_net_of_idle")
        # one core's worth of records at the measured CPU cost: what the worker could do alone
        res["records_per_s_cpu_bound"] = round(1000 / cpu) if cpu else None  # type: ignore[operator]
        for mode in FLOOR_MODES:  # the worker as a share of the no-op Faust worker's ceiling
            fl = res.get(f"floor_{mode}_records_per_s")
            rps = res.get("records_per_s")
            if fl and rps:
                res[f"records_per_s_vs_floor_{mode}"] = round(rps / fl, 2)  # type: ignore[operator]
            fc = res.get(f"floor_{mode}_cpu_ms_per_record_net_of_idle")
            if fc:
                res[f"floor_{mode}_records_per_s_cpu_bound"] = round(1000 / fc)  # type: ignore[operator]
        return res


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=20000, help="backlog size for records_per_s")
    ap.add_argument("--rate", type=int, default=1000, help="steady records/s for the latencies")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each latency phase")
    ap.add_argument(
        "--worst-seconds",
        type=float,
        default=3.0,
        help="length of the worst-case latency phase (0: skip it); at 1,000/s it is several "
        "times what one worker can do, so it mostly measures a backlog",
    )
    ap.add_argument(
        "--floor-records",
        type=int,
        default=20000,
        help="backlog size for the no-op Faust floor (0: skip it); larger than --records "
        "because at the floor's rate the 0.5 s commit interval would weigh on a short backlog",
    )
    ap.add_argument("--floor-worker", choices=FLOOR_MODES, help=argparse.SUPPRESS)
    ap.add_argument("--profile", type=Path, help="run the worker under cProfile into this file")
    args = ap.parse_args()
    if args.floor_worker:
        floor_worker(args.floor_worker)
        return
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
            log = Path(tempfile.gettempdir()) / f"framewatch-bench-streams-worker-{os.getpid()}.log"
            prof = args.profile.resolve() if args.profile else None
            res = asyncio.run(
                Bench(settings, log, prof).run(
                    args.records, args.rate, args.seconds, args.worst_seconds, args.floor_records
                )
            )
        finally:
            broker.stop(keep_data=False)
            redis.stop(keep_data=False)
    for k, v in res.items():
        print(f"{k:>28}: {v}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
