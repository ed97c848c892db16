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

# default thresholds for `check`: score at or above -> block / review
BLOCK = 0.85
REVIEW = 0.5


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


def decide(scores: dict[str, float]) -> tuple[str, str]:
    """The decision under the default threshold table, with a one-line rationale."""
    if not scores:
        return "allow", "no scores"
    path, top = max(scores.items(), key=lambda kv: kv[1])
    if top >= BLOCK:
        return "block", f"{path} {top:.2f} >= block threshold {BLOCK}"
    if top >= REVIEW:
        return "review", f"{path} {top:.2f} >= review threshold {REVIEW}"
    return "allow", f"highest {path} {top:.2f} < review threshold {REVIEW}"


def _check(args: argparse.Namespace, settings: Settings) -> int:
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
        action, why = decide(s.scores)
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
        f"and a decision (block >= {BLOCK}, review >= {REVIEW}) with a rationale.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_check)
    _register_banks(sub)


def _register_banks(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from scoring import bank_cli

    bank_cli.register(sub)
