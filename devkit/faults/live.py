"""Fault scenarios of live platforms: publishers that come back, poison records, a dead sink.

Registered with the others in devkit/faults/scenarios.py (issue 14's fault suite).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import struct
import time

from aiohttp import web

from devkit.faults.run import FaultHook, Run, Scenario
from devkit.faults.stack import LiveTs, remux
from devkit.testdata import testdata_dir
from framewatch import kafkaio, records
from framewatch.local import free_port
from framewatch.settings.deadletters import FAUST_MAX_REQUEST_BYTES

# ------------------------------------------------------------------------------------------
# a publisher that comes back under the same stream id


async def _comes_back(run: Run, *, kill_after_s: float | None) -> None:
    """A safe first life (20 s of the pattern video, real time), then the same stream id back
    with the banked clip: the comeback must be blocked. kill_after_s: the first ingest is
    killed -9 that far in (ingest crashed and restarted) instead of ending cleanly."""
    first = await asyncio.to_thread(
        remux, testdata_dir() / "videos" / "pattern-hd-no-bar.mp4",
        run.stack.media / "pattern-20.mp4", 20,
    )  # fmt: skip
    p = await run.ingest("recon", str(first), "acct-recon")
    if kill_after_s is None:
        await p.wait()
    else:
        await asyncio.sleep(kill_after_s)
        await run.kill_ingest("recon")
    run.fault()
    back = time.time()
    await run.ingest("recon", str(run.media["chair"]), "acct-recon")  # same stream id
    run.cleared()
    first_life = sum(f.stream_id == "recon" and f.captured_at < back
                     for f in run.pipe.frames.values())  # fmt: skip

    def check() -> None:
        blocks = [d for d in run.pipe.decisions
                  if d.stream_id == "recon" and d.action == "block" and d.decided_at > back]  # fmt: skip
        after = sum(f.stream_id == "recon" and f.captured_at >= back
                    for f in run.pipe.frames.values())  # fmt: skip
        run.fig.notes.append(f"first life {first_life} frames, comeback {after} frames; "
                             f"{len(blocks)} block decision(s) after the comeback")  # fmt: skip
        if blocks:
            run.fig.recover_s = round(min(d.decided_at for d in blocks) - back, 1)
        else:
            run.fig.problems.append("the stream that came back with banked video was not blocked "
                                    "(issue 14.1: replays must be recognised by frame_id)")  # fmt: skip

    run.checks.append(check)


async def _reconnect(run: Run) -> None:
    await _comes_back(run, kill_after_s=None)


async def _kill_ingest(run: Run) -> None:
    await _comes_back(run, kill_after_s=12.0)


async def _kill_live_pull(run: Run, block_wait_s: float = 90.0) -> None:
    """A live pull of banked video is blocked; its ingest is killed -9 and restarted under the
    same stream id while the broadcast goes on. The restart must continue the same life of the
    stream from its saved position (same session, seq going on): the stream stays blocked, with
    no second block, page or strike (those would show as a duplicate decision)."""
    ts = await asyncio.to_thread(
        remux, run.media["chair"], run.stack.media / "chair-live.ts", 120, "mpegts"
    )
    live = LiveTs(ts)
    await live.start()
    run.closers.append(live.close)
    stream = "live-red"
    await run.ingest(stream, live.url, "acct-live-red", realtime=False)
    deadline = time.monotonic() + block_wait_s
    while time.monotonic() < deadline and not _blocks(run, stream):
        await asyncio.sleep(0.5)
    if not _blocks(run, stream):
        run.fig.problems.append(
            f"the live pull of banked video was not blocked in {block_wait_s:g}s"
        )
        return
    await asyncio.sleep(3)  # a few more frames of the blocked life, their position saved
    run.fault()
    await run.kill_ingest(stream)
    await asyncio.sleep(2)
    await run.ingest(stream, live.url, "acct-live-red", realtime=False)
    run.cleared()

    def check() -> None:
        t_fault, t_clear = run.t_fault or 0, run.t_clear or 0
        mine = [f for f in run.pipe.frames.values() if f.stream_id == stream]
        before = [f for f in mine if f.captured_at < t_fault]
        after = [f for f in mine if f.captured_at > t_clear]
        s_before = {f.session for f in before}
        s_after = {f.session for f in after}
        seq_before = max((f.seq for f in before), default=-1)
        seq_after = min((f.seq for f in after), default=-1)
        run.fig.notes.append(
            f"{stream}: {len(before)} frames before the kill (seq up to {seq_before}), "
            f"{len(after)} after the restart (seq from {seq_after}); sessions before "
            f"{len(s_before)}, after {len(s_after)}, shared {len(s_before & s_after)}; "
            f"{len(_blocks(run, stream))} block decision(s)"
        )
        run.fig.recover_s = run.first_scored_after(stream, t_clear)
        if not after:
            run.fig.problems.append(f"{stream} sent no frame after its ingest was restarted")
        elif s_after != s_before:
            run.fig.problems.append(f"the restarted pull of {stream} began a new life of the "
                                    "stream instead of continuing its position")  # fmt: skip
        elif seq_after <= seq_before - 3:  # only what Kafka acked after the last save repeats
            run.fig.problems.append(f"the restarted pull of {stream} went back from seq "
                                    f"{seq_before} to {seq_after}")  # fmt: skip
        if len(_blocks(run, stream)) != 1:
            run.fig.problems.append(f"{stream} blocked {len(_blocks(run, stream))} times, "
                                    "not once")  # fmt: skip

    run.checks.append(check)


def _blocks(run: Run, stream: str) -> set[str]:
    """Unique block decisions of a stream so far."""
    return {d.decision_id for d in run.pipe.decisions
            if d.stream_id == stream and d.action == "block"}  # fmt: skip


# ------------------------------------------------------------------------------------------
# poison records on every topic


def _with(body: dict[str, object], field: str, literal: str) -> bytes:
    """JSON of body with one field set to a raw literal (NaN, 1e13 ...)."""
    return json.dumps({**body, field: "@@"}).replace('"@@"', literal).encode()


def _poison(frame: records.Frame) -> list[tuple[str, bytes]]:
    """(topic key, value): what a broken or hostile producer could write on each topic."""
    meta = {"type": "frame", "v": 1, **frame.model_dump(mode="json", exclude={"jpeg"}),
            "frame_id": records.new_id(), "stream_id": "poison-f"}  # fmt: skip
    blob = _with(meta, "captured_at", "NaN")
    nan_frame = struct.pack(">3sBI", records.FRAME_MAGIC, 1, len(blob)) + blob + frame.jpeg
    sc = json.loads(records.encode(records.Scores(
        frame_id=records.new_id(), stream_id="poison-s", account_id="acct-poison", seq=0,
        captured_at=time.time(), scored_at=time.time(), scores={"child_safety.csam": 0.99},
    )))  # fmt: skip
    al = json.loads(records.encode(records.Alert(
        incident_id="poison-a", severity="critical", category="child_safety.csam",
        red_line=True, stream_id="poison-a", account_id="acct-poison", summary="poison",
        captured_at=time.time(), raised_at=time.time(),
    )))  # fmt: skip
    return [
        ("frames", records.FRAME_MAGIC + b"\x01\x00\x00\x00\x10" + b"\x00" * (12 << 20)),
        ("frames", nan_frame),
        ("scores", b"{" + os.urandom(3 << 20)),
        ("scores", _with(sc, "captured_at", "1e13")),
        ("alerts", _with(al, "raised_at", "1e300")),
        ("reviews", b"{not a review"),
        ("decisions", b"\x00garbage decision"),
        ("enforcement", _with({"type": "enforcement", "v": 1}, "issued_at", "-1e18")),
    ]


# where each poison record is dead-lettered: decisions and enforcement reach the worker
# through its audit relay (the router of the suite takes alerts only)
_EXPECT = {"frames": 2, "scores": 2, "alerts": 1, "reviews": 1, "audit-in": 2}


async def _poison_records(run: Run, timeout_s: float = 120.0) -> None:
    (frame,) = await run.read_frames(limit=1)
    t, prod = run.s.topics, kafkaio.producer(run.s)
    await prod.start()
    run.fault()
    try:
        for key, value in _poison(frame):
            await prod.send_and_wait(t.name(key), value, key=b"poison")
    finally:
        await prod.stop()
    run.cleared()
    cons = kafkaio.consumer(run.s, t.name("dead_letters"), group_id=None)
    await cons.start()
    got: dict[str, int] = {}
    biggest = 0
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(got.get(k, 0) < n for k, n in _EXPECT.items()):
            for msgs in (await cons.getmany(timeout_ms=500)).values():
                for m in msgs:
                    d = records.decode(m.value, records.DeadLetter)
                    if d.failed_at < (run.t_fault or 0):
                        continue
                    where = (d.source_topic or "?").removeprefix(t.prefix)
                    where = "audit-in" if where.endswith("audit-in") else where
                    got[where] = got.get(where, 0) + 1
                    biggest = max(biggest, len(m.value))
    finally:
        await cons.stop()
    run.fig.recover_s = round(time.time() - (run.t_fault or 0), 1)
    run.fig.notes.append(f"dead letters by source topic {got} (expected {_EXPECT}); "
                         f"largest {biggest} bytes")  # fmt: skip
    missing = {k: n for k, n in _EXPECT.items() if got.get(k, 0) < n}
    if missing:
        run.fig.problems.append(f"poison records not dead-lettered: {missing}")
    if biggest >= FAUST_MAX_REQUEST_BYTES:
        run.fig.problems.append(f"a dead letter of {biggest} bytes: over Faust's 1 MB limit")
    if any(d.stream_id.startswith("poison") for d in run.pipe.decisions):
        run.fig.problems.append("a poison record was decided on")


# ------------------------------------------------------------------------------------------
# a dead sink beside a live one


async def _dead_sink(run: Run, settle_s: float = 24.0, dead_s: float = 40.0) -> None:
    """Red-line pages go to the platform webhook (live) and a second webhook; the second
    answers 503 for dead_s. Figure: the live sink's page latency, before and during."""
    dead = FaultHook()
    app = web.Application()
    app.router.add_post("/dead", dead.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    routing = run.pipe.tmp / "routing.yaml"
    spec = json.loads(routing.read_text())
    spec["sinks"]["dead-hook"] = {"type": "webhook", "url": f"http://127.0.0.1:{port}/dead",
                                  "secret": "demo-secret"}  # fmt: skip
    spec["routes"].append({"name": "red-line-copy", "match": {"types": ["alert"],
                           "red_line": True}, "sinks": ["dead-hook"]})  # fmt: skip
    routing.write_text(json.dumps(spec))
    p = run.proc("alerts")
    p.terminate()
    await p.wait()
    await run.restart("alerts")
    base0 = time.time()
    await asyncio.sleep(settle_s)
    run.fault()
    dead.fail = True
    await asyncio.sleep(dead_s)
    dead.fail = False
    run.cleared("alerts")

    def check() -> None:
        asyncio.get_running_loop().create_task(runner.cleanup())
        t_fault, t_clear = run.t_fault or 0, run.t_clear or 0
        live = [(at - a.raised_at, a.raised_at) for at, i, a in run.hook.deliveries
                if isinstance(a, records.Alert) and a.red_line and i.endswith(":0")]  # fmt: skip
        before = [lat for lat, raised in live if base0 <= raised < t_fault]
        during = [lat for lat, raised in live if t_fault <= raised < t_clear]

        def fig(xs: list[float]) -> str:
            if not xs:
                return "none"
            return f"{len(xs)} pages, median {statistics.median(xs):.2f}s, max {max(xs):.2f}s"

        run.fig.notes.append(f"live sink red-line page latency: no fault {fig(before)}; "
                             f"dead sink beside it {fig(during)}; the dead sink refused "
                             f"{dead.failures} deliveries")  # fmt: skip
        if not before or not during:
            run.fig.problems.append("no red-line page in one of the windows: nothing to compare")
        elif max(during) > max(before) + 2.0:
            run.fig.problems.append(f"the live sink's pages waited on the dead one: max "
                                    f"{max(during):.2f}s vs {max(before):.2f}s without")  # fmt: skip
        paged = {a.incident_id for _, i, a in run.hook.deliveries  # since the second sink was
                 if isinstance(a, records.Alert) and a.red_line and i.endswith(":0")  # added
                 and a.raised_at >= base0}  # fmt: skip
        late = {a.incident_id for _, _, a in dead.deliveries if isinstance(a, records.Alert)}
        if paged - late:
            run.fig.problems.append(f"{len(paged - late)} page(s) never reached the dead sink "
                                    "after it came back")  # fmt: skip

    run.checks.append(check)


LIVE_SCENARIOS = [
    Scenario("reconnect", "a publisher ends, then comes back under the same stream id with "
             "banked video", _reconnect),
    Scenario("kill-ingest", "kill -9 an ingest mid-stream; it restarts under the same stream "
             "id, now showing banked video", _kill_ingest),
    Scenario("kill-ingest-live", "kill -9 the ingest of a blocked live pull; restarted under "
             "the same id, it continues the same life", _kill_live_pull),
    Scenario("poison-records", "poison on every topic: 12 MiB bad frame, NaN and 1e13 times, "
             "3 MiB garbage, alert raised_at 1e300", _poison_records),
    Scenario("dead-sink", "a second red-line sink answers 503 for 40 s beside the live one",
             _dead_sink),
]  # fmt: skip
