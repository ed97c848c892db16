# ruff: noqa: E402
"""Fusion and quality-gate benchmark: how many sampled frames of the sample videos cross the
default policy's review/block thresholds under each fusion/gate choice.

Every sample ingest takes of the four bundled videos (default ingest settings) is scored once
per built-in model; each candidate then fuses and gates those same scores. None of these
videos shows anything a policy should flag, so every crossing is a false alarm. The synthetic
positives of devkit/data/eval/sexual show the other side: how many still reach review.
    python benchmarks/fusion.py
The last line printed is one JSON object.
"""

from __future__ import annotations

import sys
from pathlib import Path

# run as a script, this file's folder comes first on sys.path and would shadow the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import json

from devkit.testdata import testdata_dir, video
from framewatch import pdq, taxonomy
from framewatch.settings import load_settings
from framewatch.settings.scoring import FusionRule
from ingest.engine import SampleEngine, StreamMeta
from ingest.source import VideoSource
from scoring import fusion
from scoring.model import decode_image
from scoring.service import build_scorer
from streams.policy import load_dir

VIDEOS = [
    "doorknob-hd-no-bar.mp4",
    "chair-orig-22-sd-bar.mp4",
    "pattern-hd-no-bar.mp4",
    "test-padded-dimensions.mp4",
]
# (name, default rule, quality floor, factor)
CANDIDATES = [
    ("max (before)", FusionRule(method="max"), 0, 1.0),
    ("mean", FusionRule(method="mean"), 0, 1.0),
    ("agree k=2", FusionRule(method="agree", k=2), 0, 1.0),
    ("max, q<30 x0.5", FusionRule(method="max"), 30, 0.5),
    ("max, q<50 x0.5", FusionRule(method="max"), 50, 0.5),
    ("max, q<50 x0", FusionRule(method="max"), 50, 0.0),
    ("max, q<70 x0.5", FusionRule(method="max"), 70, 0.5),
    ("mean, q<50 x0.5", FusionRule(method="mean"), 50, 0.5),
]


def samples() -> list[tuple[str, int, bytes]]:
    """(video, PDQ quality, thumbnail JPEG) of every sample ingest takes."""
    settings = load_settings()
    out = []
    for name in VIDEOS:
        engine = SampleEngine(settings, StreamMeta(name, "bench"))
        with VideoSource(str(video(name))) as src:
            for f in engine.process(src.frames()):
                out.append((name, f.pdq_quality or 0, f.jpeg))
        print(f"sampled {name}: {engine.counts.sampled} frames", file=sys.stderr)
    return out


def main() -> int:
    settings = load_settings()
    scorer = build_scorer(settings)
    policy = load_dir(None, taxonomy.load())
    frames = samples()
    per_model = []
    for i, (_, q, jpeg) in enumerate(frames):
        per_model.append(
            (q, scorer.score([decode_image(jpeg, settings.scoring.max_image_pixels)])[0].per_model)
        )
        if i % 20 == 0:
            print(f"scored {i + 1}/{len(frames)}", file=sys.stderr)
    worst = max(
        ((max(s.get("sexual", 0) for s in pm.values()), q, frames[i][0])
         for i, (q, pm) in enumerate(per_model)),
    )  # fmt: skip
    # the other side of the trade: synthetic positives (devkit/data/eval/sexual) still flagged?
    positives = []
    for p in sorted((testdata_dir() / "eval" / "sexual").glob("*.jpg")):
        img = decode_image(p.read_bytes(), settings.scoring.max_image_pixels)
        positives.append((pdq.hash_rgb(img[:, :, ::-1])[1], scorer.score([img])[0].per_model))
    qs = sorted(q for q, _ in per_model)
    print(f"{len(frames)} sampled frames, models {scorer.model_set}")
    print(f"PDQ quality: min {qs[0]}, median {qs[len(qs) // 2]}, max {qs[-1]}; "
          f"highest single-model sexual score {worst[0]:.2f} (quality {worst[1]}, {worst[2]})")  # fmt: skip
    print(f"{'candidate':<18} {'review':>7} {'block':>6} {'positives kept':>15}")
    result: dict[str, dict[str, int]] = {}
    for name, rule, floor, factor in CANDIDATES:
        review = block = 0
        for q, pm in per_model:
            fused, _ = fusion.fuse(pm, {}, rule)
            gated = fusion.gate(fused, q, floor, factor)
            rules = [(v, policy.rule(p)) for p, v in gated.items()]
            review += any(v >= r.review for v, r in rules)
            block += any(v >= r.block for v, r in rules)
        kept = 0
        for q, pm in positives:
            fused, _ = fusion.fuse(pm, {}, rule)
            kept += (
                fusion.gate(fused, q, floor, factor).get("sexual", 0)
                >= policy.rule("sexual").review
            )
        result[name] = {"review": review, "block": block, "positives_kept": kept}
        print(f"{name:<18} {review:>7} {block:>6} {kept:>9}/{len(positives)}")
    sc = settings.scoring
    print(f"default now: {sc.fusion_default.method}, quality_floor {sc.quality_floor}, "
          f"factor {sc.low_quality_factor}")  # fmt: skip
    print(json.dumps({"frames": len(frames), "candidates": result,
                      "quality": {"min": qs[0], "median": qs[len(qs) // 2], "max": qs[-1]}}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
