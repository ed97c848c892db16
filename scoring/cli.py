"""`framewatch` subcommands of the scoring stage: score, check."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from framewatch import metrics
from framewatch.errors import FramewatchError
from framewatch.settings import Settings


def _score(args: argparse.Namespace, settings: Settings) -> int:
    from scoring.service import ScoringService

    svc = ScoringService(settings)
    if settings.metrics.enabled:
        metrics.serve("scoring", settings.metrics.host, settings.metrics.scoring_port)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, svc.stop)
        await svc.run()

    asyncio.run(main())
    return 0


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from scoring.api import decide
    from scoring.model import decode_jpeg
    from scoring.service import build_scorer

    scorer = build_scorer(settings)
    out = []
    for p in args.images:
        try:
            img = decode_jpeg(Path(p).read_bytes())
        except (OSError, FramewatchError) as e:
            print(f"{p}: {e}", file=sys.stderr)
            return 2
        s = scorer.score([img])[0]
        sc = settings.scoring
        action, why = decide(s.scores, sc.block_threshold, sc.review_threshold)
        out.append({"image": p, "scores": s.scores, "models": s.models, "decision": action,
                    "rationale": why,
                    "detections": [d.model_dump() for d in s.detections]})  # fmt: skip
    if args.json:
        print(json.dumps(out if len(out) > 1 else out[0], indent=2))
    else:
        for r in out:
            sc = " ".join(f"{k}={v:.3f}" for k, v in sorted(r["scores"].items()))
            print(f"{r['image']}: {r['decision']} ({r['rationale']}) {sc}")
    return 0


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
