"""`framewatch demo` and `framewatch selftest`: the devkit's commands, registered by entry point
like a stage's (pyproject ``framewatch.commands``), so the core never knows them by name."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from framewatch.cli import add_json_flag, local_stack
from framewatch.errors import FramewatchError
from framewatch.settings import Settings


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole pipeline on the bundled sample videos",
        description="Starts the local Kafka and Redis (unless configured), puts the chair sample "
        "video into a red-line hash bank, streams an edited copy of it and three unrelated "
        "sample videos as live streams through ingest, scoring, streams and alerts (each its own "
        "process), prints decisions and alerts as they happen, then a summary. The padded "
        "sample is in a review bank, so its stream waits for a person in the reviewer console, "
        "which runs too: the demo ends by printing its URL and a reviewer's login. Exit 0 when "
        "the edited chair stream was blocked, the alert reached the local webhook, nothing else "
        "was blocked and a review waits in the console.",
    )
    p.add_argument(
        "--serve-console",
        action="store_true",
        help="after the summary keep the console (and the pipeline) running, so you can log in "
        "and work the waiting review; Ctrl-C stops everything",
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="stream only the first S seconds of the chair video (default: all 22 s)",
    )
    p.add_argument(
        "--keep-running",
        action="store_true",
        help="leave the local Kafka and Redis running afterwards",
    )
    add_json_flag(p)
    p.set_defaults(func=_demo)

    p = sub.add_parser(
        "selftest",
        help="prove the pipeline survives faults: `selftest --faults` (takes minutes)",
        description="Starts its own Kafka and Redis on free ports, then for each fault scenario "
        "runs the four stages as real processes under a steady load of live streams (looped "
        "sample videos plus a red-line offender going live every 8 s), injects the fault "
        "(kill -9 of a stage or of an ingest, broker or Redis restart, Redis down 30 s, a "
        "network cut of each stage through a TCP proxy, a stalling or garbage-spitting source, "
        "a publisher back under the same stream id, poison records on every topic, a dead sink "
        "beside a live one, a backlog, a broken policy file) and "
        "counts against the frames topic: frames never scored, duplicate decisions and pages, "
        "strikes miscounted, time to recover. Prints progress, then a table. Exit 0 when every "
        "figure is at its goal. About 2 minutes a scenario on 2 cores; docs/faults.md.",
    )
    p.add_argument("--faults", action="store_true", help="run the fault scenarios")
    p.add_argument(
        "--only", action="append", metavar="NAME",
        help="run only this scenario (repeatable; an unknown name lists them all)",
    )  # fmt: skip
    add_json_flag(p)
    p.set_defaults(func=_selftest)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    """The demo scenario on a local (or configured) Kafka and Redis, in its own topic prefix."""
    import uuid

    from devkit.demo import run_demo, verdict

    say = (lambda m: print(m, file=sys.stderr)) if args.json else print
    external = {"kafka_bootstrap", "redis_url"} <= settings.model_fields_set
    with local_stack(
        args,
        settings,
        say,
        enabled=not external,
        what="demo",
        keep=args.keep_running,
        free_if_taken=True,  # the demo's stack is throwaway: a Redis on 6379 is no reason to stop
    ) as (settings, _env):
        run = uuid.uuid4().hex[:6]
        settings.topics.prefix = f"{settings.topics.prefix}demo-{run}."
        settings.redis_prefix = f"{settings.redis_prefix}demo-{run}:"
        printed: list[bool] = []

        def report(summary: dict[str, Any]) -> None:
            printed.append(_report(summary, args.json, args.serve_console))

        try:
            summary = asyncio.run(run_demo(settings, as_json=args.json, seconds=args.seconds,
                                           serve_console=args.serve_console, report=report))  # fmt: skip
        except KeyboardInterrupt:
            return 0 if printed and printed[0] else 1
    return 0 if verdict(summary)[0] else 1


def _report(summary: dict[str, Any], as_json: bool, serving: bool) -> bool:
    """Print the summary, the verdict and, last, the console's URL; returns the verdict."""
    from devkit.demo import verdict

    ok, why = verdict(summary)
    con = summary["console"]
    if as_json:
        print(json.dumps({"ok": ok, "why": why, **summary}), flush=True)
        return ok
    print("\nsummary")
    for key in (
        "frames_in",
        "frames_scored",
        "blocked_streams",
        "alerts",
        "webhook_received",
        "capture_to_webhook_s",
        "latency_ms_p50",
        "latency_ms_max",
    ):
        print(f"  {key:<22} {summary[key]}")
    print("  highest score per category, all frames:")
    for cat, v in summary["highest_scores"].items():
        print(f"    {cat:<30} {v:.3f}")
    print(f"\n{'OK' if ok else 'FAILED'}: {why}")
    waiting = ", ".join(f"{w['stream_id']} ({w['category']})" for w in con["waiting"]) or "none"
    print(f"\nreviewer console  {con['url']}")
    print(f"  log in as        {con['user']} / {con['password']}")
    print(f"  waiting          {con['pending_reviews']} review(s): {waiting}")
    if serving:
        print("  the console stays up until Ctrl-C", flush=True)
    else:
        print("  it stopped with the demo: `framewatch demo --serve-console` keeps it open")
    return ok


def _selftest(args: argparse.Namespace, settings: Settings) -> int:
    """The fault suite against a Kafka + Redis it starts on free ports (nothing shared)."""
    from devkit import faults

    if not args.faults:
        raise FramewatchError("say which self-test: `framewatch selftest --faults`")
    say = (lambda m: print(m, file=sys.stderr, flush=True)) if args.json else print
    # the harness's own readers reconnect through broker restarts: their complaints are noise
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    figs = asyncio.run(faults.run_all(settings, args.only or None, say))
    ok = all(f.ok for f in figs)
    if args.json:
        print(json.dumps({"ok": ok, "scenarios": [f.as_dict() for f in figs]}))
    else:
        print("\n" + faults.table(figs))
        print(f"\n{'OK' if ok else 'FAILED'}: {sum(f.ok for f in figs)}/{len(figs)} scenarios")
    return 0 if ok else 1
