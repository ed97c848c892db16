"""One scenario run: the pipeline, the live load, the fault clock and the counting."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from devkit.demo import NOTEWORTHY, Hook, Pipeline
from devkit.faults.stack import LiveTs, Stack, remux
from devkit.tcpproxy import TcpProxy
from devkit.testdata import testdata_dir
from framewatch import kafkaio, records
from framewatch.metrics import served_port
from framewatch.services import cli_argv, service

Say = Callable[[str], None]
OFFENDER = "acct-offender"


@dataclass(frozen=True)
class Scenario:
    name: str
    fault: str
    inject: Callable[[Run], Awaitable[None]]
    quick: bool = False  # cheap enough for the default test run
    drain_s: float = 120.0  # how long the backlog may take to drain after the load stops
    proxy_for: str | None = None  # the stage whose Kafka traffic goes through the TCP proxy


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

    async def _pump(self, name: str, proc: asyncio.subprocess.Process) -> None:
        """Keep every line of a service in <tmp>/<name>.log; show the noteworthy ones."""
        assert proc.stdout is not None
        with open(self.tmp / f"{name}.log", "ab") as log:
            async for line in proc.stdout:
                log.write(line)
                text = line.decode(errors="replace").rstrip()
                if text and any(w in text for w in NOTEWORTHY):
                    self.say(f"  [{name}] {text}")

    async def start(self, name: str, *args: str, extra_env: dict[str, str] | None = None) -> None:
        await super().start(
            name, *args, extra_env={**self.extra.get(name, {}), **(extra_env or {})}
        )


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
        self.closers: list[Callable[[], Awaitable[None]]] = []  # a scenario's own servers

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
        if self.sc.proxy_for:  # "scoring", "streams", "alerts", or "ingest" (the looped load)
            self.proxy = await self.stack.proxy().start()
            boot = f"127.0.0.1:{self.stack.proxy_port}"
            self.pipe.extra[self.sc.proxy_for] = {"FRAMEWATCH_KAFKA_BOOTSTRAP": boot}
        await self.pipe.setup([v / "chair-orig-22-sd-bar.mp4"])

    async def ingest(self, stream: str, source: str, account: str, realtime: bool = True,
                     **env: str) -> asyncio.subprocess.Process:  # fmt: skip
        args = ["ingest", source, "--stream-id", stream, "--account-id", account,
                "--tenant", "faults"] + (["--realtime"] if realtime else [])  # fmt: skip
        log = open(self.logs / f"ingest-{stream}.log", "ab")  # noqa: SIM115 (child owns it; "a": a restart keeps the lines before)
        proc = await asyncio.create_subprocess_exec(
            *cli_argv(*args),
            env={**self.pipe.env(), "FRAMEWATCH_METRICS__ENABLED": "false",
                 **(self.pipe.extra.get("ingest", {}) if stream.startswith("bg-") else {}),
                 **env},
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

    async def live_source(self) -> LiveTs:
        """A live MPEG-TS over HTTP, ingested as stream live-http, 8 s under way."""
        self.live = LiveTs(self.media["ts"])
        await self.live.start()
        await self.ingest("live-http", self.live.url, "acct-live", realtime=False)
        await asyncio.sleep(8)
        return self.live

    def first_scored_after(self, stream: str, t: float) -> float | None:
        """Seconds from t until the first frame of stream captured after t was scored."""
        scored = self.scored_at()
        after = [scored[i] for i, f in self.pipe.frames.items()
                 if f.stream_id == stream and f.captured_at > t and i in scored]  # fmt: skip
        return round(min(after) - t, 1) if after else None

    # ---- faults --------------------------------------------------------------------------
    def proc(self, name: str) -> asyncio.subprocess.Process:
        return self.pipe.procs[name]

    async def kill(self, name: str) -> None:
        """SIGKILL a service (its whole process group): no clean shutdown at all."""
        p = self.proc(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        await p.wait()

    async def kill_ingest(self, stream: str) -> None:
        """SIGKILL a stream's ingest (its process group); it is no longer waited for."""
        p = self.ingests.pop(stream)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        await p.wait()

    async def restart(self, name: str) -> None:
        await self.pipe.start(name, *service(name).args)

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
        """The consumer group and topic of a stage, as the stage registered its service."""
        svc = service(stage)
        assert svc.group is not None and svc.consumes is not None, f"{stage} consumes nothing"
        return svc.group(self.s), self.s.topics.name(svc.consumes)

    async def _caught_up(self, stages: list[str]) -> float | None:
        """Seconds from t_clear until each stage's group committed past the ends at t_clear."""
        t0, deadline = time.time(), time.monotonic() + self.sc.drain_s + 120
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

    async def metric(self, stage: str, signal: str) -> float | None:
        """Sum of the samples of a signal the stage registered (framewatch.services), read from
        its /metrics (None when it cannot be read)."""
        assert self.s.metrics.port_dir is not None
        svc = service(stage)
        name, _, labels = svc.signals[signal].partition("{")
        labels = labels.rstrip("}")
        port = served_port(self.s.metrics.port_dir, svc.name)
        if port is None:
            return None
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
    async def drain(self) -> None:
        deadline = time.monotonic() + self.sc.drain_s
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
        want: dict[tuple[str, str], set[str]] = {}
        for d in uniq.values():
            if d.action == "block":
                want.setdefault((d.tenant, d.account_id), set()).add(d.decision_id)
        for (tenant, acct), ids in want.items():
            counted = await self.ledger(tenant, acct)
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
                last = text.splitlines()[-1] if text else "-"
                f.notes.append(last if last.startswith(f"{name}:") else f"{name}: {last}")
        for name, p in pipe.procs.items():
            if p.returncode is not None and p.returncode not in (0, -9):
                tail = (self.logs / f"{name}.log").read_text(errors="replace").strip()
                f.problems.append(f"service {name} exited {p.returncode}: "
                                  f"{tail.splitlines()[-1] if tail else '-'}")  # fmt: skip

    async def ledger(self, tenant: str, account: str) -> list[str]:
        try:
            out = await self.pipe.run_cmd("account", "show", account, "--tenant", tenant, "--json")
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
        for close in self.closers:
            with contextlib.suppress(Exception):
                await close()
