"""`framewatch demo`: the whole pipeline on the bundled sample videos, start to finish.

Puts the chair video into a red-line hash bank and the padded sample into a review bank,
streams an edited copy of the chair (scaled, grey, logo, re-encoded) and the other sample videos
as real-time live streams, prints decisions and alerts as they happen and the alert arriving at
a local webhook, then a summary and the reviewer console's URL with the padded stream's review
waiting in it (devkit/demo_console.py). Every stage
runs as its own process through its own `framewatch` command, exactly as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from devkit import demo_console
from devkit.testdata import testdata_dir
from framewatch import kafkaio, records
from framewatch.errors import FramewatchError
from framewatch.services import cli_argv, consumers
from framewatch.settings import Settings, to_env

log = logging.getLogger(__name__)

BANK = "demo-known-bad"
BANK_CATEGORY = "known_bad.csam_bank"
WARMUP = "warmup"
# log lines of a service worth showing: our format (" W "/" E "), Faust's ("[WARNING]"), crashes
NOTEWORTHY = (" W ", " E ", "[WARNING]", "[ERROR]", "Traceback")
# an ingest of a sample video (22 s at most, paced in real time) still running this long is stuck:
# it is asked for its stacks, killed and reported instead of holding the demo forever
STREAM_LIMIT_S = 120.0
# what `framewatch ingest` prints when its watchdog ended a stuck clean-up (ingest.stop_grace_s)
STUCK = "framewatch: ingest still running"


def make_edited_copy(
    src: Path, dst: Path, max_seconds: float | None = None, mark: str = "LIVE",
    mirror: bool = False,
) -> Path:  # fmt: skip
    """Re-encode src scaled to 75%, in grey, with a watermark: a typical re-upload edit.
    A different ``mark`` gives different pixels (no two streams share a JPEG), same PDQ match.
    ``mirror``: flipped left to right as well, which no bank here matches (PDQ is not
    mirror-invariant): the same picture and cost, as a stream no bank knows."""
    import av
    import cv2
    import numpy as np

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        rate = vin.average_rate or 30
        w, h = (
            (int(vin.codec_context.width * 0.75) // 2) * 2,
            (int(vin.codec_context.height * 0.75) // 2) * 2,
        )
        vout = out.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = w, h, "yuv420p"
        vout.options = {"preset": "ultrafast", "crf": "28"}
        for frame in inp.decode(vin):
            if max_seconds is not None and frame.time is not None and frame.time > max_seconds:
                break
            img = cv2.resize(frame.to_ndarray(format="rgb24"), (w, h), interpolation=cv2.INTER_AREA)
            if mirror:
                img = np.ascontiguousarray(img[:, ::-1])
            grey = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
            # a translucent channel watermark, as re-streamers add (a solid box moves PDQ ~30 bits)
            marked = grey.copy()
            cv2.putText(
                marked,
                mark,
                (w - 12 - 12 * len(mark), h - 12),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.5,
                (255,) * 3,
                2,
            )
            edited = cv2.addWeighted(marked, 0.6, grey, 0.4, 0)
            for packet in vout.encode(
                av.VideoFrame.from_ndarray(np.ascontiguousarray(edited), "rgb24")
            ):
                out.mux(packet)
        for packet in vout.encode():
            out.mux(packet)
    return dst


@dataclass
class Hook:
    """A local webhook receiver standing in for the platform's enforcement endpoint."""

    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    port: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received.append((time.time(), body))
        return web.json_response({"ok": True})


def _routing(hook_url: str, secret: str) -> str:
    """The alerts routing file for the demo: every alert and enforcement to the local webhook."""
    return json.dumps(
        {
            "sinks": {"demo-hook": {"type": "webhook", "url": hook_url, "secret": secret}},
            "routes": [{"name": "demo", "sinks": ["demo-hook"]}],
        }
    )


class Pipeline:
    """The four stages as child processes on one settings object, plus a live view of topics.

    Used by `framewatch demo`, the end-to-end test and benchmarks/e2e.py.
    """

    def __init__(self, settings: Settings, *, say: Any = print, warmup_s: float = 2.0) -> None:
        self.s = settings
        self.say = say
        self.warmup_s = warmup_s
        self.tmp = Path(tempfile.mkdtemp(prefix="framewatch-demo-"))
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.stalls: list[str] = []  # where an ingest's clean-up stalled, its watchdog said
        self.decisions: list[records.Decision] = []
        self.alerts: list[records.Alert] = []
        self.frames: dict[str, records.Frame] = {}
        self.scores: list[records.Scores] = []
        self.hook = Hook()
        self._runner: web.AppRunner | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._pumps: list[asyncio.Task[None]] = []

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEWATCH_")}
        env.update(to_env(self.s))
        env["FRAMEWATCH_ALERTS__ROUTING_FILE"] = str(self.tmp / "routing.yaml")
        # a throwaway run beside whatever else runs here (`framewatch up`, another demo): its
        # services bind ports the kernel picks, never the fixed ones a running stack holds
        env["FRAMEWATCH_ALERTS__HTTP_PORT"] = "0"
        env["FRAMEWATCH_METRICS__PORT_DIR"] = str(self.tmp / "ports")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    async def run_cmd(
        self,
        *args: str,
        extra_env: dict[str, str] | None = None,
        stdin: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """Run one command to its end; past ``timeout`` s it is asked for its tasks' stacks
        (SIGUSR1, which `framewatch ingest` prints), killed, and reported as failed."""
        proc = await asyncio.create_subprocess_exec(
            *cli_argv(*args), env={**self.env(), **(extra_env or {})},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.PIPE if stdin is not None else None,
        )  # fmt: skip
        talk = asyncio.ensure_future(
            proc.communicate(stdin.encode() if stdin is not None else None)
        )
        try:
            out, _ = await asyncio.wait_for(asyncio.shield(talk), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGUSR1)
                await asyncio.sleep(1.0)
                proc.kill()
            out, _ = await talk
            raise FramewatchError(
                f"`framewatch {' '.join(args)}` did not end within {timeout:.0f} s (killed):\n"
                f"{out.decode()[-4000:]}"
            ) from None
        if proc.returncode != 0:
            raise FramewatchError(f"`framewatch {' '.join(args)}` failed:\n{out.decode()[-2000:]}")
        return out.decode()

    async def start(self, name: str, *args: str, extra_env: dict[str, str] | None = None) -> None:
        """Start (or restart, under the same name) one service; extra_env overrides settings."""
        proc = await asyncio.create_subprocess_exec(
            *cli_argv(*args), env={**self.env(), **(extra_env or {})},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.procs[name] = proc
        self._pumps.append(asyncio.create_task(self._pump(name, proc)))

    async def _pump(self, name: str, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        in_traceback = False
        async for line in proc.stdout:
            text = line.decode(errors="replace").rstrip()
            # a traceback is shown whole: its frames, then the exception line that ends it
            show = in_traceback or any(w in text for w in NOTEWORTHY)
            in_traceback = "Traceback" in text or (in_traceback and text[:1] in (" ", ""))
            if text and show:
                self.say(f"  [{name}] {text}")

    async def setup(self, bank_videos: list[Path], review_videos: list[Path] = ()) -> None:  # type: ignore[assignment]
        """Topics, webhook receiver, routing file, the red-line bank (and the review bank:
        a match there sends the stream to a person), then the services."""
        await kafkaio.create_topics(self.s)
        app = web.Application()
        app.router.add_post("/hook", self.hook.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.hook.port = self._runner.addresses[0][1]
        hook_url = f"http://127.0.0.1:{self.hook.port}/hook"
        (self.tmp / "routing.yaml").write_text(_routing(hook_url, "demo-secret"))
        self.say(f"webhook receiver on {hook_url}")
        for video in bank_videos:
            self.say(f"red-line bank {BANK}: adding {video.name}")
            await self.run_cmd("bank", "add", BANK, "--video", str(video), "--role", "red_line",
                               "--category", BANK_CATEGORY)  # fmt: skip
        for video in review_videos:
            self.say(f"review bank {demo_console.REVIEW_BANK}: adding {video.name}")
            await self.run_cmd("bank", "add", demo_console.REVIEW_BANK, "--video", str(video),
                               "--role", "review", "--category", demo_console.REVIEW_CATEGORY)  # fmt: skip
        for svc in consumers():  # scoring, streams, alerts, as the stages registered them
            await self.start(svc.name, *svc.args)
        self._watcher = asyncio.create_task(self._watch())
        await self._warm_up()

    async def _warm_up(self) -> None:
        """Push one short clip through before timing anything: models load, groups settle."""
        clip = testdata_dir() / "videos" / "doorknob-hd-no-bar.mp4"
        self.say("warming up: models loading, consumer groups joining ...")
        await self.run_cmd("ingest", str(clip), "--stream-id", WARMUP, "--account-id", WARMUP)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            mine = {f for f, fr in self.frames.items() if fr.stream_id == WARMUP}
            if mine and mine <= {sc.frame_id for sc in self.scores}:
                break
            await asyncio.sleep(0.3)
        await asyncio.sleep(self.warmup_s)
        self.frames = {k: f for k, f in self.frames.items() if f.stream_id != WARMUP}
        self.scores = [sc for sc in self.scores if sc.stream_id != WARMUP]

    async def stream(
        self,
        streams: dict[str, Path],
        tenant: str = "demo",
        timeout: float | None = None,
        start_in: float | None = None,
    ) -> list[str]:
        """Ingest each video as a real-time live stream, all at once; wait for them to end.
        With ``timeout``, an ingest still running past it is asked for its stacks, killed and
        its error returned (the others go on); without, the first failure raises. An ingest
        whose watchdog ended a stalled clean-up (its stream went out whole) is told and kept
        in ``stalls``, with where it stalled. ``start_in``: the streams
        start that many seconds from now, once their processes are up, spread evenly over
        one second (live streams' samples fall at any phase of the second, not all at once)."""
        tasks = []
        base = time.time() + (start_in or 0.0)
        limit = None if timeout is None else timeout + (start_in or 0.0) + 1.0  # the last start
        for i, (name, path) in enumerate(streams.items()):
            at = base + i / len(streams)
            start = [] if start_in is None else ["--start-at", f"{at:.3f}"]
            args = ["ingest", str(path), "--stream-id", name, "--account-id", f"acct-{name}",
                    "--tenant", tenant, "--realtime", *start]  # fmt: skip
            tasks.append(asyncio.create_task(self.run_cmd(*args, timeout=limit)))
            self.say(f"streaming {path.name} as {name}")
        done = await asyncio.gather(*tasks, return_exceptions=timeout is not None)
        for out in done:
            if isinstance(out, str) and STUCK in out:
                self.stalls.append(out[out.index(STUCK) :])
                self.say(f"WARNING an ingest's clean-up stalled (a bug; where):\n{self.stalls[-1]}")
        return [str(e) for e in done if isinstance(e, BaseException)]

    async def drain(self, timeout: float = 30.0, quiet: float = 3.0) -> None:
        """Wait until every sampled frame has a score, then a little for the last decisions."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.frames and set(self.frames) <= {sc.frame_id for sc in self.scores}:
                break
            await asyncio.sleep(0.3)
        await asyncio.sleep(quiet)

    async def close(self) -> None:
        if self._watcher:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for proc in self.procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        for name, proc in self.procs.items():
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                log.warning("%s did not stop within 15 s of SIGTERM; killing it", name)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()  # reap it while this loop still runs
        if self._runner:
            await self._runner.cleanup()

    async def _watch(self) -> None:
        t = self.s.topics
        c = kafkaio.consumer(
            self.s, t.name("frames"), t.name("scores"), t.name("decisions"), t.name("alerts"),
            group_id=None, auto_offset_reset="earliest",
        )  # fmt: skip
        await c.start()
        try:
            while True:
                for msgs in (await c.getmany(timeout_ms=300)).values():
                    for m in msgs:
                        with contextlib.suppress(FramewatchError):
                            self._see(records.decode(m.value))
        finally:
            await c.stop()

    def _see(self, rec: records._Record) -> None:
        if isinstance(rec, records.Frame):
            self.frames[rec.frame_id] = rec.model_copy(update={"jpeg": b""})
        elif isinstance(rec, records.Scores):
            self.scores.append(rec)
        elif isinstance(rec, records.Decision):
            self.decisions.append(rec)
            why = ", ".join(f"{r.category} {r.score:.2f}>={r.threshold:.2f}" for r in rec.reasons)
            lat = rec.decided_at - rec.captured_at
            red = " RED LINE" if rec.red_line else ""
            self.say(f"DECISION {rec.action.upper()}{red} stream={rec.stream_id} ({why}) "
                     f"{lat * 1000:.0f} ms after capture")  # fmt: skip
        elif isinstance(rec, records.Alert):
            self.alerts.append(rec)
            self.say(f"ALERT {rec.severity} {rec.category} stream={rec.stream_id}: {rec.summary}")

    def summary(self, blocked_expected: str | None = None) -> dict[str, Any]:
        lat = [(d.decided_at - d.captured_at) * 1000 for d in self.decisions]
        scored_ids = [sc.frame_id for sc in self.scores]
        per_stream: dict[str, int] = {}
        for f in self.frames.values():
            per_stream[f.stream_id] = per_stream.get(f.stream_id, 0) + 1
        first_hook = min((t for t, _ in self.hook.received), default=None)
        highest: dict[str, float] = {}  # what each category's models said at most, all streams
        for sc in (sc for sc in self.scores if sc.frame_id in self.frames):
            for cat, v in sc.scores.items():
                highest[cat] = max(highest.get(cat, 0.0), float(v))
        block = next(
            (d for d in self.decisions if d.action == "block" and d.stream_id == blocked_expected),
            None,
        )
        return {
            "frames_in": len(self.frames),
            "frames_scored": len(set(scored_ids) & set(self.frames)),
            "score_records": len(scored_ids),
            "frames_per_stream": per_stream,
            "decisions": [
                {
                    "stream_id": d.stream_id,
                    "action": d.action,
                    "red_line": d.red_line,
                    "categories": [r.category for r in d.reasons],
                }
                for d in self.decisions
            ],
            "blocked_streams": sorted({d.stream_id for d in self.decisions if d.action == "block"}),
            "alerts": len(self.alerts),
            "webhook_received": len(self.hook.received),
            "capture_to_webhook_s": (
                round(first_hook - block.captured_at, 3) if first_hook and block else None
            ),
            "latency_ms_p50": round(statistics.median(lat), 1) if lat else None,
            "latency_ms_max": round(max(lat), 1) if lat else None,
            "highest_scores": {c: round(v, 3) for c, v in sorted(highest.items())},
        }


async def run_demo(
    settings: Settings,
    *,
    as_json: bool,
    seconds: float | None,
    serve_console: bool = False,
    report: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the scenario; ``report`` gets the summary while the console still runs, and with
    ``serve_console`` the demo then keeps everything up until interrupted (Ctrl-C)."""

    def say(msg: str) -> None:
        print(msg, file=sys.stderr if as_json else sys.stdout, flush=True)

    data = testdata_dir() / "videos"
    pipe = Pipeline(settings, say=say)
    try:
        chair = data / "chair-orig-22-sd-bar.mp4"
        edited = await asyncio.to_thread(
            make_edited_copy, chair, pipe.tmp / "chair-edited.mp4", seconds
        )
        padded = data / "test-padded-dimensions.mp4"
        await pipe.setup([chair], review_videos=[padded])
        console = await demo_console.start(pipe, demo_console.pick_port(settings.console.port))
        failed = await pipe.stream({
            "demo-chair-edited": edited,
            "demo-pattern": data / "pattern-hd-no-bar.mp4",
            "demo-doorknob": data / "doorknob-hd-no-bar.mp4",
            "demo-padded": padded,
        }, timeout=STREAM_LIMIT_S)  # fmt: skip
        for failure in failed:
            say(f"ERROR an ingest failed:\n{failure}")
        await pipe.drain()
        waiting = await demo_console.pending_reviews(console)
        summary = pipe.summary(blocked_expected="demo-chair-edited")
        summary["failed_ingests"] = failed
        summary["stalled_ingests"] = len(pipe.stalls)
        summary["console"] = {
            **console,
            "serving": serve_console,
            "pending_reviews": len(waiting),
            "waiting": [{k: i[k] for k in ("stream_id", "category", "path")} for i in waiting],
        }
        if report is not None:
            report(summary)
        if serve_console:
            await asyncio.Event().wait()  # until Ctrl-C cancels the run
    finally:
        await pipe.close()
    return summary


def verdict(summary: dict[str, Any]) -> tuple[bool, str]:
    """Did the demo show what it promises? (ok, one line why)."""
    if summary["blocked_streams"] != ["demo-chair-edited"]:
        return False, f"expected only demo-chair-edited blocked, got {summary['blocked_streams']}"
    if not summary["webhook_received"]:
        return False, "the alert never reached the local webhook (see the alerts log above)"
    if not summary.get("console", {}).get("pending_reviews"):
        return (
            False,
            "no review waiting in the console (the padded stream should match the "
            "review bank; see the console and scoring logs above)",
        )
    if summary.get("failed_ingests"):
        return False, f"{len(summary['failed_ingests'])} stream(s) failed to ingest (see above)"
    if summary["frames_scored"] != summary["frames_in"]:
        return False, f"{summary['frames_in'] - summary['frames_scored']} sampled frames unscored"
    return True, (
        f"edited chair blocked as a red-line hash match; alert at the webhook "
        f"{summary['capture_to_webhook_s']} s after the matching frame was captured; "
        f"{summary['console']['pending_reviews']} review(s) waiting in the console"
    )
