"""`framewatch` subcommands of the scoring stage: score, check."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from framewatch import metrics
from framewatch.errors import FramewatchError
from framewatch.settings import Settings


def _score(args: argparse.Namespace, settings: Settings) -> int:
    from scoring.service import ScoringService

    svc = ScoringService(settings)
    if settings.metrics.enabled:
        metrics.serve("scoring", settings.metrics.host, settings.metrics.scoring_port)
        metrics.init_series("scoring", topics_in=[svc.frames_topic],
                            topics_out=[svc.scores_topic], dead_letter_reasons=["bad_jpeg"])  # fmt: skip

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, svc.stop)
        await svc.run()

    asyncio.run(main())
    return 0


def _check(args: argparse.Namespace, settings: Settings) -> int:
    import redis

    from scoring.api import CheckApi
    from scoring.service import build_scorer

    api = CheckApi(settings, build_scorer(settings))
    try:
        api.index = api.store.load()
    except redis.RedisError as e:
        print(f"hash banks not checked: Redis unavailable ({e})", file=sys.stderr)
    out: list[dict[str, Any]] = []
    failed = 0
    for p in args.images:  # one bad file is reported, and never hides the others' results
        try:
            r = api._check(Path(p).read_bytes())
        except (OSError, FramewatchError) as e:
            print(f"{p}: {e}", file=sys.stderr)
            out.append({"image": p, "error": str(e)})
            failed += 1
            continue
        out.append({"image": p, **r})
    if args.json:
        print(json.dumps(out if len(out) > 1 else out[0], indent=2))
    else:
        for r in (r for r in out if "error" not in r):
            sc = " ".join(f"{k}={v:.3f}" for k, v in sorted(r["scores"].items()))
            hm = " ".join(
                f"bank={m['bank']}/{m['entry_id']}@{m['distance']}" for m in r["hash_matches"]
            )
            print(f"{r['image']}: {r['decision']} ({r['rationale']}) {sc} {hm}".rstrip())
    return 2 if failed else 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from aiohttp import web

    from scoring.api import app
    from scoring.service import build_scorer

    sc = settings.scoring
    web.run_app(app(settings, build_scorer(settings)), host=sc.http_host, port=sc.http_port)
    return 0


def _register_banks(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from scoring import bank_cli

    bank_cli.register(sub)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this stage's commands to the `framewatch` command."""
    p = sub.add_parser(
        "score",
        help="run the scorer: frames topic -> models -> scores topic",
        description="Consume sampled frames, score them with the configured ONNX models "
        "(settings scoring.models), and produce one Scores record per frame.",
    )
    p.set_defaults(func=_score)
    p = sub.add_parser(
        "check",
        help="score image files now and print a decision",
        description="Score images with the configured models; print per-category scores "
        "and a decision under scoring.block_threshold / review_threshold with a rationale.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_check)
    p = sub.add_parser(
        "check-api",
        help="serve POST /v1/check and OpenAI-compatible POST /v1/moderations",
        description="HTTP check API on scoring.http_host:http_port.",
    )
    p.set_defaults(func=_serve)
    _register_banks(sub)
