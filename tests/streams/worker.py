"""Run the real streams worker as a subprocess and talk to it over the real broker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from framewatch import kafkaio, records
from framewatch.records import AuditEntry, Decision
from framewatch.settings import Settings, to_env


def env_for(settings: Settings, data_dir: Path, metrics_port: int = 0) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEWATCH_")}
    env.update(to_env(settings))
    env.update(FRAMEWATCH_METRICS__ENABLED="false", FRAMEWATCH_STREAMS__DATA_DIR=str(data_dir))
    if metrics_port:
        env.update(
            FRAMEWATCH_METRICS__ENABLED="true",
            FRAMEWATCH_METRICS__HOST="127.0.0.1",
            FRAMEWATCH_METRICS__STREAMS_PORT=str(metrics_port),
        )
    return env


class Worker:
    """`python -m framewatch.cli streams worker` with the test's settings (metrics_port > 0
    serves its /metrics there; ``module``: another entry point, ``env``: added to its
    environment)."""

    def __init__(
        self,
        settings: Settings,
        data_dir: Path,
        log: Path,
        metrics_port: int = 0,
        module: str = "framewatch.cli",
        env: dict[str, str] | None = None,
    ) -> None:
        self.settings, self.data_dir, self.log = settings, data_dir, log
        self.metrics_port = metrics_port
        self.module, self.env = module, env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        fh = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, "streams", "worker"],
            env={**env_for(self.settings, self.data_dir, self.metrics_port), **self.env},
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def metrics_text(self, timeout: float = 2.0) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read().decode()

    def metric(self, line_start: str) -> float:
        """The value of the first /metrics sample line that starts with ``line_start`` (0 if none)."""
        for line in self.metrics_text(timeout=5).splitlines():
            if line.startswith(line_start):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def lag(self) -> dict[tuple[str, int], float]:
        """framewatch_consumer_lag from the worker's /metrics: (topic, partition) -> records."""
        try:
            text = self.metrics_text()
        except OSError:
            return {}  # not serving yet
        out: dict[tuple[str, int], float] = {}
        for fam in text_string_to_metric_families(text):
            if fam.name != "framewatch_consumer_lag":
                continue
            for s in fam.samples:
                if s.labels.get("stage") == "streams":
                    out[(s.labels["topic"], int(s.labels["partition"]))] = s.value
        return out


async def produce(settings: Settings, items: list[tuple[str, bytes]]) -> None:
    prod = kafkaio.producer(settings)
    await prod.start()
    try:
        for key, value in items:
            await prod.send_and_wait(settings.topics.name("scores"), value, key=key.encode())
    finally:
        await prod.stop()


async def collect(
    settings: Settings,
    topic_key: str,
    want: int,
    timeout: float = 60.0,
    settle: float = 1.5,
    worker: Worker | None = None,
) -> list[records._Record]:
    """Read the topic from the start until ``want`` records came (then a little longer)."""
    cons = kafkaio.consumer(settings, settings.topics.name(topic_key), group_id=None)
    await cons.start()
    out: list[records._Record] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if worker is not None and worker.proc is not None and worker.proc.poll() is not None:
                raise AssertionError(f"the worker exited: see {worker.log}")
            batch = await cons.getmany(timeout_ms=300)
            for msgs in batch.values():
                out.extend(records.decode(m.value) for m in msgs)
            if len(out) >= want:
                deadline = min(deadline, time.monotonic() + settle)
    finally:
        await cons.stop()
    return out


async def read_to_end(
    settings: Settings, topic_key: str, worker: Worker | None = None, timeout: float = 60.0
) -> list[records._Record]:
    """Every record ``topic_key`` holds now: read from the start up to each partition's end
    offset taken when called. A time budget alone (``collect``) returns part of a long topic
    on a busy box, and a test comparing two such reads then compares two different parts."""
    cons = kafkaio.consumer(settings, settings.topics.name(topic_key), group_id=None)
    await cons.start()
    out: list[records._Record] = []
    deadline = time.monotonic() + timeout
    try:
        while not cons.assignment():
            if time.monotonic() > deadline:
                raise AssertionError(f"no partition of {topic_key} was assigned in {timeout} s")
            await asyncio.sleep(0.05)
        parts = list(cons.assignment())
        ends = await cons.end_offsets(parts)
        while True:
            behind = [tp for tp in parts if await cons.position(tp) < ends[tp]]
            if not behind:
                return out
            if worker is not None and worker.proc is not None and worker.proc.poll() is not None:
                raise AssertionError(f"the worker exited: see {worker.log}")
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic_key} to its end in {timeout} s")
            batch = await cons.getmany(*behind, timeout_ms=300)
            for msgs in batch.values():
                out.extend(records.decode(m.value) for m in msgs)
    finally:
        await cons.stop()


async def until(
    settings: Settings,
    topic_key: str,
    pred: Callable[[list[Any]], bool],
    worker: Worker | None = None,
    timeout: float = 90.0,
) -> list[records._Record]:
    """Read the whole of ``topic_key`` again until ``pred(records)`` holds; the records of the
    last read (the caller's assertions then say what was missing)."""
    deadline = time.monotonic() + timeout
    while True:
        recs = await read_to_end(settings, topic_key, worker=worker)
        if pred(recs) or time.monotonic() > deadline:
            return recs
        await asyncio.sleep(0.25)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def verify(settings: Settings, worker: Worker, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "framewatch.cli", "audit", "verify", *flags],
        env=env_for(settings, worker.data_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )


def ident(rec: Any) -> str:
    return rec.decision_id if isinstance(rec, Decision) else rec.enforcement_id


async def audited_all(settings: Settings, worker: Worker, timeout: float = 60) -> list[Any]:
    """Wait until every published decision and enforcement has a link and the audit topic has
    stopped growing (a worker still working through its input publishes more, and chains its
    evidence pins besides); the audit records."""
    deadline = time.monotonic() + timeout
    seen = -1
    while True:
        pub = await read_to_end(settings, "decisions", worker=worker)
        pub += await read_to_end(settings, "enforcement", worker=worker)
        links = await read_to_end(settings, "audit", worker=worker)
        chained = {
            r.record.get("decision_id") or r.record.get("enforcement_id")
            for r in links
            if isinstance(r, AuditEntry)
        }
        settled = {ident(r) for r in pub} <= chained and len(links) == seen
        if settled or time.monotonic() > deadline:
            assert {ident(r) for r in pub} <= chained
            return links
        seen = len(links)
        await asyncio.sleep(1.0)
