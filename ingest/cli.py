"""`framewatch ingest ...` and `framewatch sources ...` commands of the ingest stage."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time

from framewatch.settings import Settings
from ingest.engine import Counts, StreamMeta


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this stage's commands to the `framewatch` command."""
    p = sub.add_parser(
        "ingest",
        help="sample a video file or live URL into the frames topic",
        description="Decode SOURCE (a file path, or rtmp/rtsp/srt/HLS URL) with PyAV, sample "
        "frames (interval by presentation time, scene cuts, near-duplicate suppression) and "
        "produce them to the frames topic keyed by stream id. Runs in the foreground with a "
        "progress line on stderr; live URLs reconnect with backoff until Ctrl-C.",
    )
    p.add_argument("source", help="video file path or pull URL")
    p.add_argument("--stream-id", required=True, help="stream id (Kafka key of its frames)")
    p.add_argument("--account-id", required=True, help="account that owns the stream")
    p.add_argument("--tenant", default="default", help="tenant (platform) the stream belongs to")
    p.add_argument("--channel", default=None, help="channel type for policy, e.g. kids")
    p.add_argument("--fps", type=float, default=None, help="samples per second (default: setting)")
    p.add_argument(
        "--realtime", action="store_true", help="pace a file at its native frame rate, like live"
    )
    p.add_argument("--keyframes", action="store_true", help="decode keyframes only (cheap)")
    p.add_argument("--json", action="store_true", help="print the final summary as JSON")
    p.set_defaults(func=_ingest)


def _progress(counts: Counts, lag: float, t0: float) -> None:
    print(
        f"\rread {counts.read}  sampled {counts.sampled}  suppressed {counts.suppressed}  "
        f"sent {counts.sent}  lag {lag * 1000:.0f} ms  {time.monotonic() - t0:.0f}s ",
        end="",
        file=sys.stderr,
        flush=True,
    )


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.errors import SourceError
    from ingest.runner import StreamIngester

    t0 = time.monotonic()
    ingester = StreamIngester(
        settings,
        args.source,
        StreamMeta(args.stream_id, args.account_id, args.tenant, args.channel),
        fps=args.fps,
        keyframes_only=args.keyframes,
        realtime=args.realtime,
        on_progress=lambda c, lag: _progress(c, lag, t0),
    )

    async def main() -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, ingester.stop)
        code = 0
        try:
            summary = await ingester.run()
        except SourceError as exc:
            summary = ingester.summary(time.monotonic() - t0, error=str(exc))
            code = 1
        print(file=sys.stderr)
        if args.json:
            print(json.dumps(summary.as_dict()))
        else:
            d = summary.as_dict()
            print(
                f"{d['stream_id']}: read {d['read']} frames, sampled {d['sampled']}, "
                f"suppressed {d['suppressed']}, sent {d['sent']}, decode errors "
                f"{d['decode_errors']}, reconnects {d['reconnects']} in {d['elapsed_s']}s"
            )
            if summary.error:
                print(f"framewatch: error: {summary.error}", file=sys.stderr)
        return code

    return asyncio.run(main())
