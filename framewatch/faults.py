"""Fault scenarios: the real pipeline under a steady live load, one fault each, counted.

Every scenario starts the four stages as real processes (framewatch.demo.Pipeline) on its own
topic and Redis prefix of a Kafka + Redis stack started here on free ports (Stack), runs live
streams of the sample videos (looped, ingested with --realtime) plus a red-line offender who goes
live again every few seconds (each clip must be blocked, paged and struck exactly once), injects
one fault, then counts against the ground truth read from the topics:

- sampled frames (frames topic) that never got a Scores record (goal 0);
- duplicate decisions (a stream's transition repeated under another id), duplicate pages (an
  incident paged under two ids) and missed pages (a red-line block never paged) (goal 0);
- strikes miscounted: the account ledger vs the unique block decisions (goal 0);
- time to recover: from the fault clearing until the affected stage's consumer group has
  committed past everything that was waiting then (or, for sources, the next frame scored).

`framewatch selftest --faults` runs them and prints the table; tests/faults runs them in pytest.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from framewatch import kafkaio, records
from framewatch.demo import Hook, Pipeline, testdata_dir
from framewatch.local import KafkaBroker, RedisServer, ensure_jars, free_port
from framewatch.settings import Settings, load_settings
from framewatch.testing.tcpproxy import TcpProxy

Say = Callable[[str], None]
OFFENDER = "acct-offender"


# ------------------------------------------------------------------------------------------
# the stack: a broker with a second listener advertised on a proxy port, and Redis


class Stack:
    """Kafka (KRaft) + Redis on free ports under one folder; the broker also listens on a
    PROXIED listener that advertises ``proxy_port``, so a client bootstrapped through a
    TcpProxy on that port keeps talking through it (Kafka metadata would otherwise hand it
    the broker's own address)."""

    def __init__(self, base: Settings, root: Path) -> None:
        self.base, self.root = base, root
        self.proxy_port = free_port()
        self._proxied = free_port()
        jars = ensure_jars(base.local.cache_dir, base.local.kafka_version)
        self.broker = KafkaBroker(
            jars, root / "kafka", free_port(), free_port(), base.local.kafka_heap,
            proxy_listener=(self._proxied, self.proxy_port),
        )  # fmt: skip
        self.redis = RedisServer(root / "redis", free_port())
        self.media = root / "media"

    @property
    def proxied_upstream(self) -> tuple[str, int]:
        return ("127.0.0.1", self._proxied)

    def start(self) -> Stack:
        self.redis.start()
        self.broker.start()
        self.media.mkdir(parents=True, exist_ok=True)
        return self

    def stop(self) -> None:
        self.broker.stop(keep_data=False)
        self.redis.stop(keep_data=False)

    def settings(self, name: str) -> Settings:
        """Settings of one scenario: its own topics, Redis keys, groups, folders, metric ports."""
        unique = f"f-{name}-{uuid.uuid4().hex[:6]}"
        d = self.root / unique
        (d / "policies").mkdir(parents=True, exist_ok=True)
        return load_settings(
            kafka_bootstrap=self.broker.bootstrap,
            redis_url=self.redis.url,
            redis_prefix=f"{unique}:",
            topics={"prefix": f"{unique}.", "partitions": 3, "account_partitions": 3},
            metrics={
                "enabled": True,
                "ingest_port": 0,
                "scoring_port": free_port(),
                "streams_port": free_port(),
                "alerts_port": free_port(),
            },
            local={"state_dir": d / "local"},
            ingest={"allow_private_urls": True},
            scoring={"group_id": f"{unique}-scorer", "text_every": 0},
            streams={
                "data_dir": d / "streams",
                "policy_dir": d / "policies",
                "reload_interval_s": 1.0,
            },
            alerts={
                "group_id": f"{unique}-alerts",
                "http_port": 0,
                "backoff_base_s": 0.5,
                "backoff_max_s": 2.0,
                "max_attempts": 100,
            },
        )


# ------------------------------------------------------------------------------------------
# media: looped live streams, the offender's clip, a live MPEG-TS over HTTP


def remux(src: Path, dst: Path, seconds: float, fmt: str | None = None) -> Path:
    """Copy src's video packets (no re-encode) into dst, looping or cutting to `seconds`."""
    import av

    if dst.exists():
        return dst
    tmp = dst.with_suffix(".part" + dst.suffix)
    with av.open(str(tmp), "w", format=fmt) as out:
        vout = None
        offset, end = 0, 0
        while True:
            with av.open(str(src)) as inp:
                vin = inp.streams.video[0]
                if vout is None:
                    vout = out.add_stream_from_template(vin)
                tb = float(vin.time_base)
                limit = int(seconds / tb)
                for pkt in inp.demux(vin):
                    if pkt.dts is None or pkt.pts is None:
                        continue
                    if pkt.pts + offset >= limit and pkt.is_keyframe:
                        break
                    end = max(end, pkt.pts + offset + (pkt.duration or 0))
                    pkt.pts += offset
                    pkt.dts += offset
                    pkt.stream = vout
                    out.mux(pkt)
                else:
                    offset = end
                    if offset < limit:
                        continue
            break
    tmp.rename(dst)
    return dst


def corrupt_copy(src: Path, dst: Path, at: float = 0.5, size: int = 200_000) -> Path:
    """src with `size` bytes of noise written over its middle: garbage mid-stream in a file."""
    data = bytearray(src.read_bytes())
    start = int(len(data) * at)
    data[start : start + size] = random.Random(7).randbytes(min(size, len(data) - start))
    dst.write_bytes(bytes(data))
    return dst


class LiveTs:
    """A live MPEG-TS over HTTP, paced in real time; can stall or spit garbage on demand."""

    def __init__(self, ts: Path) -> None:
        self.data = ts.read_bytes()
        import av

        with av.open(str(ts)) as c:
            self.rate = len(self.data) / (c.duration / 1_000_000)
        self.paused = asyncio.Event()
        self.paused.set()  # set = flowing
        self.garbage_next = 0
        self.pos = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/live.ts", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/live.ts"
        self._clock = asyncio.create_task(self._tick())

    async def close(self) -> None:
        self._clock.cancel()
        if self._runner:
            await self._runner.cleanup()

    async def _tick(self) -> None:
        """The live edge advances in real time (wrapping around), except while stalled."""
        step = 0.1
        while True:
            await self.paused.wait()
            await asyncio.sleep(step)
            self.pos = (self.pos + int(self.rate * step)) % len(self.data)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "video/mp2t"})
        await resp.prepare(request)
        sent = self.pos - self.pos % 188  # join at the live edge, on a TS packet boundary
        try:
            while True:
                await self.paused.wait()
                if self.garbage_next:
                    await resp.write(random.randbytes(self.garbage_next))
                    self.garbage_next = 0
                edge = self.pos
                if edge < sent:  # wrapped around
                    await resp.write(self.data[sent:])
                    sent = 0
                if edge > sent:
                    await resp.write(self.data[sent:edge])
                    sent = edge
                await asyncio.sleep(0.05)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp


# ------------------------------------------------------------------------------------------
# figures


@dataclass
class Figures:
    name: str
    fault: str
    sampled: int = 0
    unscored: int = 0
    decisions: int = 0
    dup_decisions: int = 0
    pages: int = 0
    dup_pages: int = 0
    missed_pages: int = 0
    redelivered: int = 0  # same page id delivered again: the receiver drops it by id
    strikes: int = 0
    strikes_miscounted: int = 0
    recover_s: float | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.unscored or self.dup_decisions or self.dup_pages or self.missed_pages
                    or self.strikes_miscounted or self.problems)  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


COLUMNS = [
    ("scenario", "name"), ("sampled", "sampled"), ("unscored", "unscored"),
    ("decisions", "decisions"), ("dup dec", "dup_decisions"), ("pages", "pages"),
    ("dup pages", "dup_pages"), ("missed pages", "missed_pages"), ("strikes", "strikes"),
    ("strikes off", "strikes_miscounted"), ("recover s", "recover_s"), ("ok", "ok"),
]  # fmt: skip


def table(figs: list[Figures]) -> str:
    """A Markdown table of the figures, one row a scenario."""
    rows = [[h for h, _ in COLUMNS], ["---"] * len(COLUMNS)]
    for f in figs:
        d = f.as_dict()
        rows.append(["-" if d[k] is None else ("yes" if d[k] is True else "NO" if d[k] is False
                     else str(d[k])) for _, k in COLUMNS])  # fmt: skip
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


# ------------------------------------------------------------------------------------------
# one run: pipeline + load + fault + counting


@dataclass
class FaultHook(Hook):
    """The platform's webhook; `fail` makes it answer 503 (the router retries)."""

    fail: bool = False
    failures: int = 0
    deliveries: list[tuple[float, str, records._Record]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        if self.fail:
            self.failures += 1
            return web.json_response({"error": "down for the test"}, status=503)
        body = await request.read()
        now = time.time()
        self.received.append((now, {}))
        self.deliveries.append(
            (now, request.headers.get("X-Framewatch-Delivery", ""), records.decode(body))
        )
        return web.json_response({"ok": True})


class _Pipe(Pipeline):
    """The demo pipeline, with per-service settings overrides (e.g. a proxied bootstrap)."""

    extra: dict[str, dict[str, str]] = {}

    async def start(self, name: str, *args: str, extra_env: dict[str, str] | None = None) -> None:
        await super().start(
            name, *args, extra_env={**self.extra.get(name, {}), **(extra_env or {})}
        )


SERVICES = {"score": ("score",), "streams": ("streams", "worker"), "alerts": ("alerts", "serve")}


class Run:
    """One scenario's pipeline, live load, fault clock and ground truth."""

    def __init__(self, stack: Stack, sc: Scenario, say: Say, before_s: float, after_s: float):
        self.stack, self.sc, self.say = stack, sc, say
        self.before_s, self.after_s = before_s, after_s
        self.s = stack.settings(sc.name)
        self.lines: list[str] = []
        self.pipe = _Pipe(self.s, say=self.lines.append, warmup_s=1.0)
        self.pipe.extra = {}
        self.hook = FaultHook()
        self.pipe.hook = self.hook
        self.fig = Figures(sc.name, sc.fault)
        self.logs = self.pipe.tmp
        self.ingests: dict[str, asyncio.subprocess.Process] = {}
        self.loading = False
        self.t_fault: float | None = None
        self.t_clear: float | None = None
        self._recovery: asyncio.Task[float | None] | None = None
        self._offenders: asyncio.Task[None] | None = None
        self.proxy: TcpProxy | None = None
        self.live: LiveTs | None = None
        self.media: dict[str, Path] = {}
        self.checks: list[Callable[[], None]] = []  # scenario checks run after the count

    # ---- setup and load ------------------------------------------------------------------
    async def setup(self) -> None:
        v = testdata_dir() / "videos"
        m = self.stack.media
        self.media = await asyncio.to_thread(lambda: {
            "pattern": remux(v / "pattern-hd-no-bar.mp4", m / "pattern-loop.mp4", 240),
            "doorknob": remux(v / "doorknob-hd-no-bar.mp4", m / "doorknob-loop.mp4", 240),
            "chair": remux(v / "chair-orig-22-sd-bar.mp4", m / "chair-clip.mp4", 6),
            "ts": remux(v / "pattern-hd-no-bar.mp4", m / "pattern-live.ts", 300, "mpegts"),
        })  # fmt: skip
        if self.sc.needs_proxy:
            self.proxy = await TcpProxy(self.stack.proxied_upstream, self.stack.proxy_port).start()
            boot = f"127.0.0.1:{self.stack.proxy_port}"
            self.pipe.extra["score"] = {"FRAMEWATCH_KAFKA_BOOTSTRAP": boot}
        await self.pipe.setup([v / "chair-orig-22-sd-bar.mp4"])

    async def ingest(self, stream: str, source: str, account: str, realtime: bool = True,
                     **env: str) -> asyncio.subprocess.Process:  # fmt: skip
        args = ["ingest", source, "--stream-id", stream, "--account-id", account,
                "--tenant", "faults"] + (["--realtime"] if realtime else [])  # fmt: skip
        log = open(self.logs / f"ingest-{stream}.log", "wb")  # noqa: SIM115 (child owns it)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "framewatch.cli", *args,
            env={**self.pipe.env(), "FRAMEWATCH_METRICS__ENABLED": "false", **env},
            stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        log.close()
        self.ingests[stream] = proc
        return proc

    async def start_load(self) -> None:
        self.loading = True
        await self.ingest("bg-pattern", str(self.media["pattern"]), "acct-bg-pattern")
        await self.ingest("bg-doorknob", str(self.media["doorknob"]), "acct-bg-doorknob")
        self._offenders = asyncio.create_task(self._offend())

    async def _offend(self, every_s: float = 8.0) -> None:
        """The repeat offender goes live with the banked clip again and again."""
        n = 0
        while self.loading:
            await self.ingest(f"off-{n}", str(self.media["chair"]), OFFENDER)
            n += 1
            await asyncio.sleep(every_s)

    async def stop_load(self) -> None:
        self.loading = False
        if self._offenders:
            await self._offenders
        for name, p in self.ingests.items():
            if name.startswith(("bg-", "live-")) and p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
        for name, p in self.ingests.items():
            try:
                rc = await asyncio.wait_for(p.wait(), 60)
            except TimeoutError:
                p.kill()
                rc = await p.wait()
                self.fig.problems.append(f"ingest {name} hung")
            if rc != 0 and not name.startswith("corrupt"):
                tail = (self.logs / f"ingest-{name}.log").read_text(errors="replace")[-300:]
                self.fig.problems.append(f"ingest {name} exited {rc}: {tail.strip()!r}")

    # ---- faults --------------------------------------------------------------------------
    def proc(self, name: str) -> asyncio.subprocess.Process:
        return self.pipe.procs[name]

    async def kill(self, name: str) -> None:
        """SIGKILL a service (its whole process group): no clean shutdown at all."""
        p = self.proc(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        await p.wait()

    async def restart(self, name: str) -> None:
        await self.pipe.start(name, *SERVICES[name])

    def fault(self) -> None:
        self.t_fault = time.time()
        self.say(f"[{self.sc.name}] fault injected: {self.sc.fault}")

    def cleared(self, *groups: str) -> None:
        """The fault is over: start measuring how long the named stages take to catch up."""
        self.t_clear = time.time()
        self.say(f"[{self.sc.name}] fault cleared after {self.t_clear - (self.t_fault or 0):.1f}s")
        if groups:
            self._recovery = asyncio.create_task(self._caught_up(list(groups)))

    def group(self, stage: str) -> tuple[str, str]:
        s = self.s
        return {
            "score": (s.scoring.group_id, s.topics.name("frames")),
            "streams": (f"{s.topics.prefix}framewatch-streams", s.topics.name("scores")),
            "alerts": (s.alerts.group_id, s.topics.name("alerts")),
        }[stage]

    async def _caught_up(self, stages: list[str], timeout: float = 240.0) -> float | None:
        """Seconds from t_clear until each stage's group committed past the ends at t_clear."""
        t0, deadline = time.time(), time.monotonic() + timeout
        cfg = kafkaio.client_config(self.s)
        admin, cons = AIOKafkaAdminClient(**cfg), AIOKafkaConsumer(**cfg, group_id=None)
        want: dict[str, dict[TopicPartition, int]] = {}
        started = False
        try:
            while time.monotonic() < deadline:
                try:
                    if not started:
                        await admin.start()
                        await cons.start()
                        started = True
                    for st in stages:
                        group, topic = self.group(st)
                        if st not in want:
                            parts = cons.partitions_for_topic(topic) or set()
                            if not parts:
                                await cons._client.force_metadata_update()
                                continue
                            tps = [TopicPartition(topic, p) for p in parts]
                            want[st] = await cons.end_offsets(tps)
                    done = True
                    for st in stages:
                        if st not in want:
                            done = False
                            continue
                        group, _ = self.group(st)
                        got = await admin.list_consumer_group_offsets(group)
                        for tp, end in want[st].items():
                            meta = got.get(tp)
                            if end > 0 and (meta is None or meta.offset < end):
                                done = False
                    if done:
                        return round(time.time() - (self.t_clear or t0), 1)
                except Exception:  # the broker may still be coming back
                    pass
                await asyncio.sleep(0.5)
            return None
        finally:
            with contextlib.suppress(Exception):
                await cons.stop()
            with contextlib.suppress(Exception):
                await admin.close()

    async def metric(self, stage: str, name: str, labels: str = "") -> float | None:
        """Sum of a metric's samples on a service's /metrics (None when it cannot be read)."""
        port = {"score": self.s.metrics.scoring_port, "streams": self.s.metrics.streams_port,
                "alerts": self.s.metrics.alerts_port}[stage]  # fmt: skip
        try:
            async with (
                ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/metrics", timeout=5) as r,
            ):
                text = await r.text()
        except Exception:
            return None
        total, seen = 0.0, False
        for line in text.splitlines():
            m = re.match(rf"^{name}(\{{[^}}]*\}})? (\S+)$", line)
            if m and labels in (m.group(1) or ""):
                total += float(m.group(2))
                seen = True
        return total if seen else None

    async def read_frames(self, limit: int) -> list[records.Frame]:
        """Frames (with their JPEGs) already on the frames topic, warm-up excluded."""
        cons = kafkaio.consumer(self.s, self.s.topics.name("frames"), group_id=None,
                                auto_offset_reset="earliest")  # fmt: skip
        await cons.start()
        out: list[records.Frame] = []
        try:
            deadline = time.monotonic() + 30
            while len(out) < limit and time.monotonic() < deadline:
                for msgs in (await cons.getmany(timeout_ms=500)).values():
                    for m in msgs:
                        fr = records.decode(m.value, records.Frame)
                        if fr.stream_id.startswith("bg-"):
                            out.append(fr)
        finally:
            await cons.stop()
        return out[:limit]

    def scored_at(self) -> dict[str, float]:
        first: dict[str, float] = {}
        for sc in self.pipe.scores:
            first[sc.frame_id] = min(first.get(sc.frame_id, sc.scored_at), sc.scored_at)
        return first

    async def wait_pending_scores(self, timeout: float = 30.0) -> None:
        """Until some sampled frame is waiting for its score (the scorer holds a batch)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if set(self.pipe.frames) - set(self.scored_at()):
                return
            await asyncio.sleep(0.02)

    # ---- drain and count -----------------------------------------------------------------
    async def drain(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if set(self.pipe.frames) <= set(self.scored_at()):
                break
            await asyncio.sleep(0.5)
        # then decisions, alerts and pages settle: wait until nothing new for a while
        last, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            now = len(self.pipe.decisions) + len(self.pipe.alerts) + len(self.hook.deliveries)
            if now != last:
                last, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since > 6:
                break
            await asyncio.sleep(0.5)
        if self._recovery:
            try:
                rec = await asyncio.wait_for(self._recovery, max(5.0, deadline - time.monotonic()))
            except TimeoutError:
                rec = None
            if rec is None:
                self.fig.problems.append("never caught up after the fault")
            self.fig.recover_s = rec if self.fig.recover_s is None else self.fig.recover_s

    async def count(self) -> None:
        f, pipe = self.fig, self.pipe
        scored = self.scored_at()
        f.sampled = len(pipe.frames)
        f.unscored = len(set(pipe.frames) - set(scored))
        if self.t_fault and self.t_clear:
            lat = [scored[i] - fr.captured_at for i, fr in pipe.frames.items()
                   if self.t_fault <= fr.captured_at <= self.t_clear and i in scored]  # fmt: skip
            f.notes.append(f"{len(lat)} frames captured during the fault, scored at most "
                           f"{max(lat, default=0):.1f}s after capture")  # fmt: skip
        uniq: dict[str, records.Decision] = {}
        for d in pipe.decisions:
            uniq.setdefault(d.decision_id, d)
        f.decisions = len(uniq)
        per_stream: dict[str, list[records.Decision]] = {}
        for d in sorted(uniq.values(), key=lambda d: (d.captured_at, d.decided_at)):
            per_stream.setdefault(d.stream_id, []).append(d)
        for ds in per_stream.values():
            f.dup_decisions += sum(a.action == b.action for a, b in itertools.pairwise(ds))
        # pages: alert deliveries at the webhook, unique by delivery id
        alert_deliveries = [(i, r) for _, i, r in self.hook.deliveries
                            if isinstance(r, records.Alert) and not r.test]  # fmt: skip
        f.redelivered = len(alert_deliveries) - len({i for i, _ in alert_deliveries})
        paged: dict[str, set[str]] = {}  # stream -> incidents paged (tier 0 triggers)
        for i, a in alert_deliveries:
            if a.kind == "trigger" and i.endswith(":0"):
                paged.setdefault(a.stream_id, set()).add(a.incident_id)
        f.pages = sum(len(v) for v in paged.values())
        red = {d.stream_id: 0 for d in uniq.values()}
        for d in uniq.values():
            red[d.stream_id] += int(d.action == "block" and d.red_line)
        for stream in set(red) | set(paged):
            n_paged, n_red = len(paged.get(stream, ())), red.get(stream, 0)
            f.dup_pages += max(0, n_paged - n_red)
            f.missed_pages += max(0, n_red - n_paged)
        # strikes: every unique block once in its account's ledger
        want: dict[str, set[str]] = {}
        for d in uniq.values():
            if d.action == "block":
                want.setdefault(d.account_id, set()).add(d.decision_id)
        for acct, ids in want.items():
            counted = await self.ledger(acct)
            f.strikes += len(counted)
            f.strikes_miscounted += len(ids ^ set(counted)) + len(counted) - len(set(counted))
        # every offender clip that was sampled enough must have been blocked
        for stream in {fr.stream_id for fr in pipe.frames.values()}:
            n = sum(fr.stream_id == stream for fr in pipe.frames.values())
            if stream.startswith("off-") and n >= 4 and red.get(stream, 0) == 0:
                seen = [f"{sc.seq}{'*' if sc.hash_matches else ''}"
                        for sc in pipe.scores if sc.stream_id == stream]  # fmt: skip
                f.problems.append(f"offender stream {stream} ({n} frames) never blocked; "
                                  f"scores in topic order (* = bank match): {seen}")  # fmt: skip
        for name in self.ingests:
            if name.startswith(("live-", "corrupt-")):
                text = (self.logs / f"ingest-{name}.log").read_text(errors="replace").strip()
                f.notes.append(f"{name}: {text.splitlines()[-1] if text else '-'}")
        for name, p in pipe.procs.items():
            if p.returncode is not None and p.returncode not in (0, -9):
                f.problems.append(f"service {name} exited {p.returncode}")

    async def ledger(self, account: str) -> list[str]:
        try:
            out = await self.pipe.run_cmd("account", "show", account, "--json")
        except Exception as e:
            self.fig.notes.append(f"no ledger for {account}: {str(e)[-200:]}")
            return []
        line = next(ln for ln in reversed(out.splitlines()) if ln.startswith("{"))
        return [s["decision_id"] for s in json.loads(line)["strikes"]]

    async def close(self) -> None:
        self.loading = False
        for p in self.ingests.values():
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                await p.wait()
        await self.pipe.close()
        if self.proxy:
            await self.proxy.close()
        if self.live:
            await self.live.close()


# ------------------------------------------------------------------------------------------
# the scenarios


@dataclass(frozen=True)
class Scenario:
    name: str
    fault: str
    inject: Callable[[Run], Awaitable[None]]
    quick: bool = False  # cheap enough for the default test run
    needs_proxy: bool = False


async def _kill_scorer(run: Run) -> None:
    await run.wait_pending_scores()
    run.fault()
    await run.kill("score")
    await asyncio.sleep(2)
    await run.restart("score")
    run.cleared("score")


async def _kill_streams(run: Run) -> None:
    run.fault()
    await run.kill("streams")
    await asyncio.sleep(2)
    await run.restart("streams")
    run.cleared("streams")


async def _kill_router_mid_retry(run: Run) -> None:
    run.hook.fail = True
    deadline = time.monotonic() + 60
    while run.hook.failures < 3 and time.monotonic() < deadline:  # a page is being retried
        await asyncio.sleep(0.1)
    run.fault()
    run.fig.notes.append(f"webhook refused {run.hook.failures} deliveries before the kill")
    await run.kill("alerts")
    run.hook.fail = False
    await run.restart("alerts")
    run.cleared("alerts")


async def _restart_broker(run: Run) -> None:
    run.fault()
    await asyncio.to_thread(run.stack.broker.stop)
    await asyncio.to_thread(run.stack.broker.start)
    run.cleared("score", "streams", "alerts")


async def _restart_redis(run: Run) -> None:
    run.fault()
    await asyncio.to_thread(run.stack.redis.stop)
    await asyncio.to_thread(run.stack.redis.start)
    run.cleared("score", "streams", "alerts")


async def _redis_down(run: Run, down_s: float = 30.0) -> None:
    """Redis away 30 s: scoring goes on uncached, banks match from memory, the router waits."""
    run.fault()
    t0 = time.time()
    await asyncio.to_thread(run.stack.redis.stop)
    await asyncio.sleep(down_s * 0.8)
    seen = {
        "scorer cache errors": await run.metric(
            "score", "framewatch_scoring_cache_total", 'result="error"'
        ),
        "router redis waits": await run.metric("alerts", "framewatch_alerts_redis_waits_total"),
    }
    await asyncio.sleep(max(0.0, down_s - (time.time() - t0)))
    await asyncio.to_thread(run.stack.redis.start)
    run.cleared("score", "streams", "alerts")
    t1 = run.t_clear or time.time()
    for what, v in seen.items():
        if not v:
            run.fig.problems.append(f"no metric says so: {what} = {v}")

    def check() -> None:  # after the drain, when every record has been read back
        scored = run.scored_at()
        during = [scored[i] - f.captured_at for i, f in run.pipe.frames.items()
                  if t0 + 2 < f.captured_at < t1 - 2 and i in scored]  # fmt: skip
        blocks = [d for d in run.pipe.decisions
                  if d.action == "block" and t0 < d.decided_at < t1]  # fmt: skip
        late = sum(x > 5 for x in during)
        run.fig.notes.append(f"while Redis was down: {len(during)} frames captured and scored, "
                             f"{late} later than 5 s (max {max(during, default=0):.1f}s); "
                             f"{len(blocks)} red-line blocks decided from the in-memory bank; "
                             f"metrics {seen}")  # fmt: skip
        if not during or late > len(during) // 4:
            run.fig.problems.append("scoring did not go on while Redis was down")
        if not blocks:
            run.fig.problems.append("no bank match decided while Redis was down")

    run.checks.append(check)


async def _cut_network(run: Run, cut_s: float = 20.0) -> None:
    assert run.proxy is not None
    run.fault()
    await run.proxy.cut()
    await asyncio.sleep(cut_s)
    run.proxy.restore()
    run.cleared("score")
    run.fig.notes.append(f"scorer reached the broker only through the proxy "
                         f"({run.proxy.connections} connections)")  # fmt: skip


async def _live_source(run: Run) -> LiveTs:
    run.live = LiveTs(run.media["ts"])
    await run.live.start()
    await run.ingest("live-http", run.live.url, "acct-live", realtime=False)
    await asyncio.sleep(8)
    return run.live


def _first_scored_after(run: Run, stream: str, t: float) -> float | None:
    scored = run.scored_at()
    after = [scored[i] for i, f in run.pipe.frames.items()
             if f.stream_id == stream and f.captured_at > t and i in scored]  # fmt: skip
    return round(min(after) - t, 1) if after else None


async def _stall_source(run: Run, stall_s: float = 15.0) -> None:
    """A live source that goes silent past the read timeout, then carries on."""
    live = await _live_source(run)
    run.fault()
    live.paused.clear()
    await asyncio.sleep(stall_s)
    live.paused.set()
    run.cleared()
    await asyncio.sleep(run.after_s)
    run.fig.recover_s = _first_scored_after(run, "live-http", run.t_clear or 0)
    if run.fig.recover_s is None:
        run.fig.problems.append("the stalled source never produced frames again")


async def _garbage_source(run: Run) -> None:
    """Noise in the middle of a live HTTP stream and in the middle of a file."""
    live = await _live_source(run)
    bad = await asyncio.to_thread(corrupt_copy, run.media["chair"],
                                  run.stack.media / "chair-corrupt.mp4")  # fmt: skip
    run.fault()
    live.garbage_next = 300_000
    await run.ingest("corrupt-file", str(bad), "acct-corrupt")
    run.cleared()
    await asyncio.sleep(run.after_s)
    run.fig.recover_s = _first_scored_after(run, "live-http", run.t_clear or 0)
    if run.fig.recover_s is None:
        run.fig.problems.append("the live source never produced frames after the garbage")


def _tagged(jpeg: bytes, tag: str) -> bytes:
    """The same picture with a JPEG comment: new bytes (no score-cache hit), same pixels."""
    body = tag.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(body) + 2).to_bytes(2, "big") + body + jpeg[2:]


async def _backlog(run: Run, streams: int = 3, minutes: float = 4.0) -> None:
    """The scorer stops; minutes of sampled video land at once; it comes back and catches up.

    The backlog is made of real frames already sampled from the sample videos, re-sent as
    other streams whose capture times span the last `minutes` (as after a long outage), each
    JPEG tagged so the score cache cannot shortcut the work."""
    run.fault()
    p = run.proc("score")
    p.terminate()
    await p.wait()
    src = await run.read_frames(limit=60)
    per = int(minutes * 60)
    now, topic = time.time(), run.s.topics.name("frames")
    prod = kafkaio.producer(run.s)
    await prod.start()
    try:
        for i in range(streams):
            for k in range(per):
                fr = src[(i * per + k) % len(src)]
                new = fr.model_copy(update={
                    "frame_id": records.new_id(), "stream_id": f"burst-{i}",
                    "account_id": f"acct-burst-{i}", "seq": k, "captured_at": now - (per - k),
                    "jpeg": _tagged(fr.jpeg, f"burst-{i}-{k}"),
                })  # fmt: skip
                await prod.send(topic, records.encode(new), key=new.stream_id.encode())
        await prod.flush()
    finally:
        await prod.stop()
    run.fig.notes.append(f"backlog {streams * per} frames = {streams} streams x {minutes:g} min "
                         f"at 1 fps, produced in {time.time() - now:.1f}s")  # fmt: skip
    await run.restart("score")
    run.cleared("score")


async def _invalid_policy(run: Run, hold_s: float = 20.0) -> None:
    """A policy file replaced by a broken one: the running policy stays, it says so."""
    policy = run.s.streams.policy_dir / "default.yaml"
    before = {d.policy_version for d in run.pipe.decisions}
    run.fault()
    policy.write_text("rules:\n  sexual: {review: [0.5\n")
    await asyncio.sleep(hold_s)
    refused = await run.metric("streams", "framewatch_streams_policy_refused_total")
    ok_gauge = await run.metric("streams", "framewatch_streams_policy_ok")
    after = {d.policy_version for d in run.pipe.decisions if d.decided_at > (run.t_fault or 0)}
    logged = any("policy refused" in ln for ln in run.lines)
    policy.unlink()
    run.cleared()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if await run.metric("streams", "framewatch_streams_policy_ok") == 1:
            run.fig.recover_s = round(time.time() - (run.t_clear or 0), 1)
            break
        await asyncio.sleep(0.25)
    run.fig.notes.append(f"policy versions before {sorted(before)}, while broken "
                         f"{sorted(after)}; refused metric {refused}, ok gauge {ok_gauge}, "
                         f"error logged {logged}")  # fmt: skip
    if not after or not after <= before:
        run.fig.problems.append("decisions while the file was broken did not keep the old policy")
    if not refused or ok_gauge != 0 or not logged:
        run.fig.problems.append("the refused policy was not logged and shown in a metric")


SCENARIOS: dict[str, Scenario] = {s.name: s for s in [
    Scenario("kill-scorer", "kill -9 the scorer while frames are in flight", _kill_scorer, True),
    Scenario("kill-streams", "kill -9 the streams worker", _kill_streams),
    Scenario("kill-router", "kill -9 the alert router while it retries a page",
             _kill_router_mid_retry),
    Scenario("restart-broker", "stop and start the Kafka broker", _restart_broker),
    Scenario("restart-redis", "stop and start Redis", _restart_redis),
    Scenario("redis-down", "Redis down for 30 s", _redis_down),
    Scenario("cut-network", "cut scorer <-> broker for 20 s (TCP proxy)", _cut_network,
             needs_proxy=True),
    Scenario("stall-source", "a live source silent for 15 s, then resuming", _stall_source),
    Scenario("garbage-source", "300 kB of noise mid live stream; a file corrupted mid-way",
             _garbage_source),
    Scenario("backlog", "scorer stopped while minutes of video pile up, then catching up",
             _backlog),
    Scenario("invalid-policy", "policy file replaced by an invalid one for 20 s",
             _invalid_policy),
]}  # fmt: skip


async def run_scenario(
    stack: Stack, sc: Scenario, say: Say = print, before_s: float = 15.0, after_s: float = 15.0
) -> Figures:
    """Set up, load, inject, drain, count. Never raises: trouble lands in Figures.problems."""
    run = Run(stack, sc, say, before_s, after_s)
    t0 = time.monotonic()
    try:
        say(f"[{sc.name}] starting the pipeline (scorer, streams worker, alert router)")
        await run.setup()
        say(f"[{sc.name}] live load: 2 looped streams + a red-line offender every 8 s")
        await run.start_load()
        await asyncio.sleep(before_s)
        await sc.inject(run)
        if sc.name not in ("stall-source", "garbage-source"):
            await asyncio.sleep(after_s)
        await run.stop_load()
        say(f"[{sc.name}] load stopped; draining")
        await run.drain()
        await run.count()
        for check in run.checks:
            check()
    except Exception as e:  # a harness failure is a failed scenario, not a crash of the suite
        run.fig.problems.append(f"harness: {type(e).__name__}: {e}")
    finally:
        await run.close()
        (run.logs / "services.log").write_text("\n".join(run.lines))
        if run.fig.problems:
            run.fig.notes.append(f"service warnings and errors: {run.logs / 'services.log'}")
    run.fig.wall_s = round(time.monotonic() - t0, 1)
    f = run.fig
    say(f"[{sc.name}] {'ok' if f.ok else 'FAILED'}: sampled {f.sampled}, unscored {f.unscored}, "
        f"dup decisions {f.dup_decisions}, dup pages {f.dup_pages}, missed pages "
        f"{f.missed_pages}, strikes off {f.strikes_miscounted}, recovered in {f.recover_s}s"
        + "".join(f"\n    problem: {p}" for p in f.problems)
        + "".join(f"\n    note: {n}" for n in f.notes))  # fmt: skip
    return run.fig


async def run_all(
    base: Settings, names: list[str] | None = None, say: Say = print
) -> list[Figures]:
    """Start a stack on free ports, run the named scenarios (all by default), stop it."""
    unknown = set(names or []) - set(SCENARIOS)
    if unknown:
        from framewatch.errors import FramewatchError

        raise FramewatchError(
            f"unknown scenario(s) {', '.join(sorted(unknown))}; known: {', '.join(SCENARIOS)}"
        )
    root = Path(tempfile.mkdtemp(prefix="framewatch-faults-"))
    say(f"starting Kafka and Redis on free ports under {root}")
    stack = Stack(base, root)
    await asyncio.to_thread(stack.start)
    try:
        return [await run_scenario(stack, SCENARIOS[n], say) for n in (names or list(SCENARIOS))]
    finally:
        await asyncio.to_thread(stack.stop)
        shutil.rmtree(root, ignore_errors=True)
