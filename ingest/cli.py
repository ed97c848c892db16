"""`framewatch ingest ...`, `framewatch sources ...` and `framewatch apikeys ...` commands."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from framewatch import fields
from framewatch.errors import FramewatchError
from framewatch.settings import Settings
from ingest.engine import Counts, StreamMeta


def _id(what: str) -> Callable[[str], str]:
    """An argparse type: a stream or account id by the rule every entry point applies."""

    def check(value: str) -> str:
        try:
            return fields.ident(value, what)
        except fields.BadIdError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return check


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this stage's commands to the `framewatch` command."""
    p = sub.add_parser(
        "ingest",
        help="sample a video file or live URL into the frames topic; `ingest serve` for the API",
        description="Decode SOURCE (a file path, or rtmp/rtsp/HLS URL; srt where FFmpeg has it) with PyAV, sample "
        "frames (interval by presentation time, scene cuts, near-duplicate suppression) and "
        "produce them to the frames topic keyed by stream id. Runs in the foreground with a "
        "progress line on stderr; live URLs reconnect with backoff until Ctrl-C. "
        "`framewatch ingest serve` instead runs the HTTP push API (OpenAPI at /openapi.json), "
        "and the supervisor of pulls registered with `framewatch sources add`.",
    )
    p.add_argument("source", help="video file path or pull URL, or `serve`")
    p.add_argument(
        "--stream-id", type=_id("stream id"), help="stream id, the tenant's own name for it; "
        f"required ({fields.ID_RULE})"
    )  # fmt: skip
    p.add_argument("--account-id", type=_id("account id"), help="account that owns the stream; "
                   "required")  # fmt: skip
    p.add_argument("--tenant", default="default", help="tenant (platform) the stream belongs to")
    p.add_argument("--channel", default=None, help="channel type for policy, e.g. kids")
    p.add_argument("--fps", type=float, default=None, help="samples per second (default: setting)")
    p.add_argument(
        "--realtime", action="store_true", help="pace a file at its native frame rate, like live"
    )
    p.add_argument("--keyframes", action="store_true", help="decode keyframes only (cheap)")
    p.add_argument(
        "--start-at", type=float, default=None, metavar="EPOCH_S", help="with --realtime: "
        "start reading at this Unix time, so that many streams start together once their "
        "processes are up and connected to Kafka and Redis (a simulation of streams already "
        "live; start-up costs ~1 CPU s)"
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the final summary as JSON")
    p.set_defaults(func=_ingest)

    s = sub.add_parser("sources", help="pulls registered for `framewatch ingest serve`")
    ss = s.add_subparsers(dest="sources_cmd", required=True)
    a = ss.add_parser("add", help="register (or replace) a pull")
    a.add_argument("source", help="file path or pull URL")
    a.add_argument("--stream-id", required=True, type=_id("stream id"))
    a.add_argument("--account-id", required=True, type=_id("account id"))
    a.add_argument("--tenant", default="default")
    a.add_argument("--channel", default=None)
    a.add_argument("--fps", type=float, default=None)
    a.add_argument("--keyframes", action="store_true")
    r = ss.add_parser("remove", help="unregister a pull (the supervisor stops it)")
    r.add_argument("stream_id", type=_id("stream id"))
    r.add_argument("--tenant", default="default", help="the tenant whose pull it is")
    ls = ss.add_parser(
        "list",
        help="registered pulls with their state (connecting, live, stalled, reconnecting, "
        "ended, failed; 'unknown' when no `ingest serve` reports it); URLs print masked",
    )
    ls.add_argument("--json", action="store_true", help="one JSON array of the entries")
    sk = ss.add_parser(
        "key", help="create an RTMP stream key: publish to rtmp://HOST:PORT/live/<key>"
    )
    sk.add_argument("--stream-id", required=True, type=_id("stream id"))
    sk.add_argument("--account-id", required=True, type=_id("account id"))
    sk.add_argument("--tenant", default="default")
    sk.add_argument("--json", action="store_true")
    s.set_defaults(func=_sources)

    k = sub.add_parser("apikeys", help="per-tenant API keys of the push API")
    ks = k.add_subparsers(dest="keys_cmd", required=True)
    ka = ks.add_parser("add", help="create a key for a tenant; it is printed once, only its "
                       "SHA-256 is stored")  # fmt: skip
    ka.add_argument("--tenant", required=True, type=_id("tenant"))
    ka.add_argument("--json", action="store_true")
    kr = ks.add_parser("revoke", help="revoke a key (give the key or its SHA-256 hex)")
    kr.add_argument("key")
    kl = ks.add_parser("list", help="stored keys (SHA-256, tenant, created_at; never the keys), "
                       "to pick the one to revoke after a rotation")  # fmt: skip
    kl.add_argument("--tenant", default=None)
    kl.add_argument("--json", action="store_true")
    k.set_defaults(func=_apikeys)


def _progress(counts: Counts, lag: float, t0: float) -> None:
    print(
        f"\rread {counts.read}  sampled {counts.sampled}  suppressed {counts.suppressed}  "
        f"sent {counts.sent}  lag {lag * 1000:.0f} ms  {time.monotonic() - t0:.0f}s ",
        end="",
        file=sys.stderr,
        flush=True,
    )


def _dump_stacks(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Print what every thread (the decode thread inside FFmpeg or the hasher) and every
    asyncio task of ``loop`` waits on: SIGUSR1, and the watchdog when it fires."""
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    if loop is not None:
        # from the watchdog's thread too: the loop may be stuck, its tasks still tell where
        for task in asyncio.all_tasks(loop):
            print(f"--- task {task.get_name()}, awaiting:", file=sys.stderr)
            coro: Any = task.get_coro()
            while coro is not None:  # the await chain, outermost first, down to what it waits on
                frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
                where = f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame else "(running)"
                print(f"  {getattr(coro, '__qualname__', repr(coro))} at {where}", file=sys.stderr)
                coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    sys.stderr.flush()


def exit_within(seconds: float, code: Callable[[], int]) -> threading.Timer:
    """A watchdog: unless the process has exited ``seconds`` from now, print every thread's
    stack (and, armed from a running event loop, its tasks') and end it with ``code()``. A
    stream that has ended (or was told to stop) must not hold its process, and so its
    supervisor, on a stuck clean-up; the stacks say where."""
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None

    def fire() -> None:
        print(f"\nframewatch: ingest still running {seconds:g} s after its stream ended or "
              "was stopped (ingest.stop_grace_s); every thread's stack:", file=sys.stderr)  # fmt: skip
        _dump_stacks(loop)
        sys.stdout.flush()
        os._exit(code())

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return timer


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    if args.source == "serve":
        from ingest.serve import serve

        asyncio.run(serve(settings))
        return 0
    if not args.stream_id or not args.account_id:
        raise FramewatchError("ingest SOURCE needs --stream-id and --account-id")
    from ingest.errors import SourceError
    from ingest.runner import StreamIngester
    from ingest.state import SourceState

    t0 = time.monotonic()
    outcome: list[int | None] = [None]  # main's exit code, once the stream is over
    armed: list[threading.Timer] = []

    def exit_code() -> int:
        """What the watchdog exits with: main's code, else 0 only for a stream that ended."""
        if outcome[0] is not None:
            return outcome[0]
        return 0 if ingester.status.state is SourceState.ENDED else 1

    def watchdog() -> None:
        """Armed once, at the first stop signal or when the stream is over (before its
        clean-up): a finished or stopped stream must not hold its process, and so its
        supervisor, on a stuck clean-up, teardown or interpreter exit."""
        if not armed:
            armed.append(exit_within(settings.ingest.stop_grace_s, exit_code))

    ingester = StreamIngester(
        settings,
        args.source,
        StreamMeta(args.stream_id, args.account_id, args.tenant, args.channel),
        fps=args.fps,
        keyframes_only=args.keyframes,
        realtime=args.realtime,
        on_progress=lambda c, lag: _progress(c, lag, t0),
        on_end=watchdog,
        start_at=args.start_at,
    )

    async def main() -> int:
        loop = asyncio.get_running_loop()
        run = asyncio.current_task()
        signals = [0]

        def stop() -> None:
            """The first SIGINT/SIGTERM ends the stream cleanly (within ingest.stop_grace_s);
            a second one cancels the run (whatever it waits on)."""
            signals[0] += 1
            if signals[0] == 1:
                ingester.stop()
                watchdog()
            elif run is not None:
                run.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        loop.add_signal_handler(signal.SIGUSR1, _dump_stacks, loop)
        code = 0
        try:
            summary = await ingester.run()
        except SourceError as exc:
            summary = ingester.summary(time.monotonic() - t0, error=str(exc))
            code = 1
        except asyncio.CancelledError:
            print("\nframewatch: ingest cancelled by a second signal", file=sys.stderr)
            return 130
        print(file=sys.stderr)
        d = summary.as_dict()
        if args.json:
            print(json.dumps(d))
        else:
            print(
                f"{d['stream_id']}: read {d['read']} frames, sampled {d['sampled']}, "
                f"suppressed {d['suppressed']}, sent {d['sent']}, decode errors "
                f"{d['decode_errors']}, reconnects {d['reconnects']}, dropped {d['dropped']} "
                f"(buffer full) in {d['elapsed_s']}s; {d['state']}"
            )
        if summary.error:
            print(f"framewatch: error: {summary.error}", file=sys.stderr)
        sys.stdout.flush()  # the summary is out even if the teardown below is cut short
        outcome[0] = code
        watchdog()  # armed already, unless the stream never started (e.g. Kafka unreachable)
        return code

    return asyncio.run(main())


def _sources(args: argparse.Namespace, settings: Settings) -> int:
    from framewatch import redisio
    from framewatch.redact import mask_url
    from ingest import registry

    client = redisio.sync_client(settings)
    if args.sources_cmd == "add":
        registry.add(
            settings,
            client,
            registry.SourceEntry(
                args.source, args.stream_id, args.account_id, args.tenant, args.channel,
                args.fps, args.keyframes,
            ),
        )  # fmt: skip
        print(f"registered {args.stream_id}: {mask_url(args.source)}")
    elif args.sources_cmd == "key":
        from ingest import streamkeys

        key = streamkeys.create_key(settings, client, args.tenant, args.account_id, args.stream_id)
        print(json.dumps({"stream_key": key, "stream_id": args.stream_id}) if args.json else key)
    elif args.sources_cmd == "remove":
        if not registry.remove(settings, client, args.tenant, args.stream_id):
            raise FramewatchError(
                f"no registered source {args.stream_id!r} of tenant {args.tenant!r}; "
                "see `sources list`"
            )
        print(f"removed {args.stream_id}")
    else:
        rows = registry.list_with_state(settings, client)
        if args.json:
            print(json.dumps(rows))
        for r in [] if args.json else rows:
            print(f"{r['stream_id']}\t{r['tenant']}/{r['account_id']}\t{r['state']}\t{r['source']}")
    return 0


def _apikeys(args: argparse.Namespace, settings: Settings) -> int:
    from framewatch import apikeys, redisio

    client = redisio.sync_client(settings)
    if args.keys_cmd == "add":
        key = apikeys.create(settings, client, args.tenant)
        if args.json:
            print(json.dumps({"tenant": args.tenant, "api_key": key}))
        else:
            print(key)
            print(f"(API key of tenant {args.tenant!r}; shown only now)", file=sys.stderr)
        return 0
    if args.keys_cmd == "list":
        entries = apikeys.list_keys(settings, client, args.tenant)
        if args.json:
            print(json.dumps(entries))
        for e in [] if args.json else entries:
            made = time.strftime("%Y-%m-%d %H:%M", time.gmtime(e.get("created_at", 0)))
            print(f"{e['sha256']}\t{e['tenant']}\t{made} UTC")
        return 0
    if not apikeys.revoke(settings, client, args.key):
        raise FramewatchError("no such API key")
    print("revoked")
    return 0
