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
        metrics.serve(
            "scoring",
            settings.metrics.host,
            settings.metrics.scoring_port,
            settings.metrics.port_dir,
        )
        out = [svc.scores_topic, *([svc.shadow.topic] if svc.shadow else [])]
        metrics.init_series("scoring", topics_in=[svc.frames_topic], topics_out=out,
                            dead_letter_reasons=["bad_jpeg"])  # fmt: skip

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, svc.stop)
        await svc.run()

    asyncio.run(main())
    return 0


def _check(args: argparse.Namespace, settings: Settings) -> int:
    import redis

    from scoring.banks import BankStore
    from scoring.check import Checker
    from scoring.service import build_scorer

    checker = Checker(settings, build_scorer(settings))
    try:
        checker.index = BankStore(settings).load()
    except redis.RedisError as e:
        print(f"hash banks not checked: Redis unavailable ({e})", file=sys.stderr)
    out: list[dict[str, Any]] = []
    failed = 0
    progress = len(args.images) > 1 and sys.stderr.isatty()  # OCR makes each image take ~1 s
    for i, p in enumerate(args.images, 1):  # one bad file never hides the others' results
        if progress:
            print(f"\rchecking {i}/{len(args.images)}: {p[-60:]}", end="", file=sys.stderr)
        try:
            r = checker.image(Path(p).read_bytes(), args.tenant, args.channel)
        except (OSError, FramewatchError) as e:
            print(f"{p}: {e}", file=sys.stderr)
            out.append({"image": p, "error": str(e)})
            failed += 1
            continue
        out.append({"image": p, **r})
    if progress:
        print(file=sys.stderr)
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


def _eval(args: argparse.Namespace, settings: Settings) -> int:
    from scoring import evaluate
    from scoring.service import build_scorer

    samples = evaluate.collect(Path(args.dir))
    sc = settings.scoring
    review = sc.review_threshold if args.review is None else args.review
    block = sc.block_threshold if args.block is None else args.block
    evaluate.score_all(build_scorer(settings), samples, not args.no_perturb, sc.max_image_pixels)
    rep = evaluate.report(samples, review, block, args.target_precision)
    out = Path(args.plots)
    out.mkdir(parents=True, exist_ok=True)
    for cat, r in rep.items():
        png = out / f"pr-{cat}.png"
        evaluate.plot_pr(cat, r["pr_curve"], png)  # type: ignore[arg-type]
        r["pr_plot"] = str(png)
    if args.json:
        print(json.dumps({"images": len(samples), "categories": rep}, indent=2))
        return 0
    print(f"{len(samples)} images; thresholds review {review}, block {block}; "
          f"PR plots in {out}")  # fmt: skip
    print(f"{'category':<28} {'n+':>4} {'at':>6} {'prec':>6} {'recall':>6} {'f1':>6}")
    for cat, r in rep.items():
        for at in ("at_review", "at_block"):
            m: dict[str, float] = r[at]  # type: ignore[assignment]
            print(f"{cat:<28} {r['positives']:>4} {m['threshold']:>6} {m['precision']:>6.3f} "
                  f"{m['recall']:>6.3f} {m['f1']:>6.3f}")  # fmt: skip
        t = r["threshold_for_target"]
        reach = "not reachable" if t is None else f"{t:.4f}"
        print(f"  threshold for precision {args.target_precision}: {reach}")
        for key, who in (("perturbation_mean_change", "positives"),
                         ("perturbation_mean_change_safe", "safe")):  # fmt: skip
            ch: dict[str, float] = r[key]  # type: ignore[assignment]
            if ch:
                print(f"  mean score change, {who}: "
                      + ", ".join(f"{k} {v:+.3f}" for k, v in ch.items()))  # fmt: skip
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from scoring import CHECK_API
    from scoring.api import serve
    from scoring.service import build_scorer

    m = settings.metrics
    if m.enabled:  # the scoring stage's metrics (framewatch_check_*), on the service's own port
        metrics.serve("scoring", m.host, CHECK_API.metrics_port(settings), m.port_dir,
                      service=CHECK_API.name)  # fmt: skip
    serve(settings, build_scorer(settings))
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
        help="check image files now with the live detectors and policy; print a decision",
        description="Run what the live scorer runs on a frame (the models, hash banks, QR "
        "codes and, when scoring.text_every > 0, OCR with the spam rules) and decide with the "
        "streams worker's policy files (streams.policy_dir) for --tenant and --channel: an "
        "image blocked live is blocked here. Prints per-category scores, the decision and the "
        "rule behind it; exit 2 if an image could not be read.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--tenant", default="default",
                   help="decide with this tenant's policy files and keywords (default: default, "
                   "the tenant of frames pushed without one)")  # fmt: skip
    p.add_argument("--channel", help="decide with this channel's policy files (e.g. kids)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_check)
    p = sub.add_parser(
        "eval",
        help="measure precision/recall of the models on a labelled image folder",
        description="Score DIR/<category path>/*.jpg (should be flagged) and DIR/safe/*.jpg "
        "(should not) with the configured models and quality gate. Per category: precision, "
        "recall and F1 at scoring.review_threshold and block_threshold, the threshold that "
        "reaches --target-precision, and the mean change of the positives' scores under "
        "perturbations (crop, overlay, low contrast, grey, rescale, JPEG q20). Writes a PR "
        "curve PNG per category. Progress goes to stderr.",
    )
    p.add_argument("dir", metavar="DIR", help="folder of labelled images")
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    p.add_argument(
        "--target-precision",
        type=float,
        default=0.9,
        metavar="P",
        help="report the lowest threshold reaching this precision (default 0.9)",
    )
    p.add_argument(
        "--plots",
        default="eval-plots",
        metavar="DIR",
        help="where the PR curve PNGs go (default ./eval-plots)",
    )
    p.add_argument(
        "--review",
        type=float,
        metavar="T",
        help="review threshold (default scoring.review_threshold; use your policy's)",
    )
    p.add_argument(
        "--block", type=float, metavar="T", help="block threshold (default scoring.block_threshold)"
    )
    p.add_argument("--no-perturb", action="store_true", help="skip perturbations (7x faster)")
    p.set_defaults(func=_eval)
    p = sub.add_parser(
        "check-api",
        help="serve POST /v1/check and OpenAI-compatible POST /v1/moderations",
        description="HTTP check API on scoring.http_host:http_port. Requests need a tenant's "
        "API key (`framewatch apikeys add TENANT`) unless scoring.check_require_api_key is "
        "false; decisions use the streams worker's policy files for that tenant and ?channel=.",
    )
    p.set_defaults(func=_serve)
    _register_banks(sub)
