"""The fault scenarios, and running them: one fault each, injected into a loaded pipeline."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from devkit.faults.live import LIVE_SCENARIOS
from devkit.faults.run import Figures, Run, Say, Scenario
from devkit.faults.stack import Stack, corrupt_copy
from framewatch import kafkaio, records, scope
from framewatch.settings import Settings

# ------------------------------------------------------------------------------------------
# the scenarios


async def _kill_scoring(run: Run) -> None:
    await run.wait_pending_scores()
    run.fault()
    await run.kill("scoring")
    await asyncio.sleep(2)
    await run.restart("scoring")
    run.cleared("scoring")


async def _kill_streams(run: Run) -> None:
    run.fault()
    await run.kill("streams")
    await asyncio.sleep(2)
    await run.restart("streams")
    run.cleared("streams")


async def _kill_alerts_mid_retry(run: Run) -> None:
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
    run.cleared("scoring", "streams", "alerts")


async def _restart_redis(run: Run) -> None:
    run.fault()
    await asyncio.to_thread(run.stack.redis.stop)
    await asyncio.to_thread(run.stack.redis.start)
    run.cleared("scoring", "streams", "alerts")


async def _redis_down(run: Run, down_s: float = 30.0) -> None:
    """Redis away 30 s: scoring goes on uncached, banks match from memory, the router waits."""
    run.fault()
    t0 = time.time()
    await asyncio.to_thread(run.stack.redis.stop)
    await asyncio.sleep(down_s * 0.8)
    seen = {
        "scorer cache errors": await run.metric("scoring", "redis_errors"),
        "router redis waits": await run.metric("alerts", "redis_waits"),
    }
    await asyncio.sleep(max(0.0, down_s - (time.time() - t0)))
    await asyncio.to_thread(run.stack.redis.start)
    run.cleared("scoring", "streams", "alerts")
    t1 = run.t_clear or time.time()
    for what, v in seen.items():
        if not v:
            run.fig.problems.append(f"no metric says so: {what} = {v}")

    def check() -> None:  # after the drain, when every record has been read back
        scored = run.scored_at()
        during = [scored[i] - f.captured_at for i, f in run.pipe.frames.items()
                  if t0 + 2 < f.captured_at < t1 - 2 and i in scored]  # fmt: skip
        # the scorer's in-memory bank index must keep matching without Redis
        out_sc = [sc for sc in run.pipe.scores
                  if sc.stream_id.startswith("off-") and t0 < sc.scored_at < t1]  # fmt: skip
        per: dict[str, int] = {}
        for sc in out_sc:
            per[sc.stream_id] = per.get(sc.stream_id, 0) + 1
        matched = [sc for sc in out_sc if sc.hash_matches]
        in_outage = [t for t in scored.values() if t0 + 2 < t < t1]
        run.fig.notes.append(f"while Redis was down: {len(in_outage)} frames scored "
                             f"({len(in_outage) / max(t1 - t0 - 2, 1):.1f}/s, uncached); frames "
                             f"captured then were scored at most {max(during, default=0):.1f}s "
                             f"after capture; {len(matched)} bank matches from the in-memory "
                             f"index; metrics {seen}")  # fmt: skip
        if not in_outage:
            run.fig.problems.append("scoring stopped while Redis was down")
        if not matched and max(per.values(), default=0) >= 3:
            run.fig.problems.append("no bank match while Redis was down")

    run.checks.append(check)


async def _cut_network(run: Run, cut_s: float = 20.0) -> None:
    """Cut one stage's Kafka link (the scenario's proxy_for) for cut_s, then restore it."""
    assert run.proxy is not None and run.sc.proxy_for is not None
    stage = run.sc.proxy_for
    run.fault()
    await run.proxy.cut()
    await asyncio.sleep(cut_s)
    run.proxy.restore()
    if stage == "ingest":  # no consumer group: recovered when new frames are scored again
        run.cleared()

        def check() -> None:
            run.fig.recover_s = run.first_scored_after("bg-pattern", run.t_clear or 0)
            if run.fig.recover_s is None:
                run.fig.problems.append("no frame of bg-pattern scored after the cut")

        run.checks.append(check)
    else:
        run.cleared(stage)
    run.fig.notes.append(f"{stage} reached the broker only through the proxy "
                         f"({run.proxy.connections} connections)")  # fmt: skip


async def _stall_source(run: Run, stall_s: float = 15.0) -> None:
    """A live source that goes silent past the read timeout, then carries on."""
    live = await run.live_source()
    run.fault()
    live.paused.clear()
    await asyncio.sleep(stall_s)
    live.paused.set()
    run.cleared()
    await asyncio.sleep(run.after_s)
    run.fig.recover_s = run.first_scored_after("live-http", run.t_clear or 0)
    if run.fig.recover_s is None:
        run.fig.problems.append("the stalled source never produced frames again")


async def _garbage_source(run: Run) -> None:
    """Noise in the middle of a live HTTP stream and in the middle of a file."""
    live = await run.live_source()
    bad = await asyncio.to_thread(corrupt_copy, run.media["chair"],
                                  run.stack.media / "chair-corrupt.mp4")  # fmt: skip
    run.fault()
    live.garbage_next = 300_000
    await run.ingest("corrupt-file", str(bad), "acct-corrupt")
    run.cleared()
    await asyncio.sleep(run.after_s)
    run.fig.recover_s = run.first_scored_after("live-http", run.t_clear or 0)
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
    p = run.proc("scoring")
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
                await prod.send(topic, records.encode(new), key=scope.stream(new).encode())
        await prod.flush()
    finally:
        await prod.stop()
    run.fig.notes.append(f"backlog {streams * per} frames = {streams} streams x {minutes:g} min "
                         f"at 1 fps, produced in {time.time() - now:.1f}s")  # fmt: skip
    await run.restart("scoring")
    run.cleared("scoring")


async def _invalid_policy(run: Run, hold_s: float = 20.0) -> None:
    """A policy file replaced by a broken one: the running policy stays, it says so."""
    policy = run.s.streams.policy_dir / "default.yaml"
    before = {d.policy_version for d in run.pipe.decisions}
    run.fault()
    policy.write_text("rules:\n  sexual: {review: [0.5\n")
    await asyncio.sleep(hold_s)
    refused = await run.metric("streams", "policy_refused")
    ok_gauge = await run.metric("streams", "policy_ok")
    after = {d.policy_version for d in run.pipe.decisions if d.decided_at > (run.t_fault or 0)}
    logged = any("policy refused" in ln for ln in run.lines)
    policy.unlink()
    run.cleared()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if await run.metric("streams", "policy_ok") == 1:
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
    Scenario("kill-scoring", "kill -9 the scoring service while frames are in flight",
             _kill_scoring, True),
    Scenario("kill-streams", "kill -9 the streams worker", _kill_streams),
    Scenario("kill-alerts", "kill -9 the alert router while it retries a page",
             _kill_alerts_mid_retry),
    Scenario("restart-broker", "stop and start the Kafka broker", _restart_broker),
    Scenario("restart-redis", "stop and start Redis", _restart_redis),
    Scenario("redis-down", "Redis down for 30 s", _redis_down),
    Scenario("cut-network-scoring", "cut scoring <-> broker for 20 s (TCP proxy)", _cut_network,
             proxy_for="scoring"),
    *[Scenario(f"cut-network-{name}", f"cut {what} <-> broker for 20 s (TCP proxy)",
               _cut_network, proxy_for=stage)
      for name, what, stage in (("ingest", "the looped ingests", "ingest"),
                                ("streams", "the streams worker", "streams"),
                                ("alerts", "the alert router", "alerts"))],
    Scenario("stall-source", "a live source silent for 15 s, then resuming", _stall_source),
    Scenario("garbage-source", "300 kB of noise mid live stream; a file corrupted mid-way",
             _garbage_source),
    Scenario("backlog", "scorer stopped while minutes of video pile up, then catching up",
             _backlog, drain_s=360.0),
    Scenario("invalid-policy", "policy file replaced by an invalid one for 20 s",
             _invalid_policy),
    *LIVE_SCENARIOS,
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
