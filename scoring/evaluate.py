"""`framewatch eval DIR`: accuracy of the configured models on a labelled image folder.

DIR/<category path>/ holds images that should be flagged as that category (`sexual/` or
`violence.gore/` or `violence/gore/`), DIR/safe/ images that should not. Metrics are pure
functions of (score, label) pairs so they are tested without models; PR curves are drawn with
Pillow (no plotting library needed).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from framewatch import pdq, taxonomy
from framewatch.errors import FramewatchError
from scoring.model import decode_image
from scoring.scorer import Scorer

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
SAFE = "safe"


class EvalError(FramewatchError):
    """The labelled folder cannot be evaluated (says what to fix)."""


@dataclass
class Sample:
    path: Path
    label: str  # a taxonomy path, or "safe"
    scores: dict[str, float] = field(default_factory=dict)
    perturbed: dict[str, dict[str, float]] = field(default_factory=dict)


def collect(root: Path, tax: taxonomy.Taxonomy | None = None) -> list[Sample]:
    """Every image under root, labelled by its folder (relative path, / or . separated);
    folders are checked against ``tax`` (the built-in taxonomy when None)."""
    if not root.is_dir():
        raise EvalError(f"{root} is not a folder: give DIR with DIR/<category>/ and DIR/safe/")
    tax = tax or taxonomy.load()
    out: list[Sample] = []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() not in IMAGE_EXT or not p.is_file():
            continue
        label = ".".join(p.parent.relative_to(root).parts)
        if not label:
            raise EvalError(f"{p}: images go in DIR/<category path>/ or DIR/safe/, not DIR/")
        if label != SAFE:
            try:
                tax.validate(label)
            except FramewatchError as e:
                raise EvalError(f"{p.parent}: folder is not a taxonomy path ({e})") from None
        out.append(Sample(p, label))
    if not any(s.label == SAFE for s in out) or all(s.label == SAFE for s in out):
        raise EvalError(f"{root}: needs images in DIR/safe/ and in at least one DIR/<category>/")
    return out


def under(path: str, category: str) -> bool:
    return path == category or path.startswith(category + ".")


def category_score(scores: dict[str, float], category: str) -> float:
    """The score for a category: its own, or the highest of any node below it."""
    return max((v for p, v in scores.items() if under(p, category)), default=0.0)


def at_threshold(pairs: list[tuple[float, bool]], t: float) -> dict[str, float]:
    """Precision, recall and F1 of `score >= t` over (score, is positive) pairs."""
    tp = sum(1 for s, y in pairs if s >= t and y)
    fp = sum(1 for s, y in pairs if s >= t and not y)
    fn = sum(1 for s, y in pairs if s < t and y)
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"threshold": t, "precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4),
            "tp": tp, "fp": fp, "fn": fn}  # fmt: skip


def pr_curve(pairs: list[tuple[float, bool]]) -> list[tuple[float, float, float]]:
    """(threshold, precision, recall) at every distinct score, highest threshold first."""
    return [
        (t, m["precision"], m["recall"])
        for t in sorted({s for s, _ in pairs}, reverse=True)
        for m in [at_threshold(pairs, t)]
    ]


def threshold_for_precision(pairs: list[tuple[float, bool]], target: float) -> float | None:
    """The lowest threshold whose precision reaches target (most recall), None if none does."""
    ok = [t for t, p, r in pr_curve(pairs) if p >= target and r > 0]
    return min(ok) if ok else None


# ------------------------------------------------------------------ perturbations (BGR uint8)
def _crop(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    return img[h // 10 : h - h // 10, w // 10 : w - w // 10]


def _overlay(img: np.ndarray) -> np.ndarray:
    out = img.copy()
    h, w = out.shape[:2]
    cv2.rectangle(out, (0, h - h // 5), (w, h), (40, 40, 40), -1)
    cv2.putText(out, "LIVE 00:42", (w // 20, h - h // 15), cv2.FONT_HERSHEY_SIMPLEX,
                max(h / 400, 0.4), (255, 255, 255), 2)  # fmt: skip
    return out


def _low_contrast(img: np.ndarray) -> np.ndarray:
    f = img.astype(np.float32)
    return np.clip(f.mean() + (f - f.mean()) * 0.4, 0, 255).astype(np.uint8)


def _grey(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def _rescale(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _jpeg(img: np.ndarray) -> np.ndarray:
    data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 20])[1].tobytes()
    return decode_image(data, img.shape[0] * img.shape[1])


PERTURBATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "crop_10pct": _crop,
    "overlay_bar": _overlay,
    "low_contrast_0.4": _low_contrast,
    "grey": _grey,
    "rescale_0.25": _rescale,
    "jpeg_q20": _jpeg,
}


def _score(scorer: Scorer, img: np.ndarray) -> dict[str, float]:
    _, q = pdq.hash_rgb(pdq.shrink_still(img)[:, :, ::-1])
    return scorer.score([img], [q])[0].scores


def score_all(scorer: Scorer, samples: list[Sample], perturb: bool, max_pixels: int) -> None:
    """Fill each sample's scores (and perturbed scores); progress goes to stderr."""
    for i, s in enumerate(samples, 1):
        try:
            img = decode_image(s.path.read_bytes(), max_pixels)
        except (OSError, FramewatchError) as e:
            raise EvalError(f"{s.path}: {e}; remove or replace the file") from None
        s.scores = _score(scorer, img)
        if perturb:
            s.perturbed = {n: _score(scorer, f(img)) for n, f in PERTURBATIONS.items()}
        print(f"eval: scored {i}/{len(samples)} {s.path.name}", file=sys.stderr)


def _mean_change(pos: list[Sample], name: str, cat: str) -> float:
    """Mean change of the positives' category score under one perturbation."""
    d = [category_score(s.perturbed[name], cat) - category_score(s.scores, cat) for s in pos]
    return round(float(np.mean(d)), 4)


def _changes(group: list[Sample], cat: str) -> dict[str, float]:
    """{perturbation: mean score change} over a group (empty when not perturbed)."""
    if not group or not all(s.perturbed for s in group):
        return {}
    return {n: _mean_change(group, n, cat) for n in PERTURBATIONS}


def report(
    samples: list[Sample],
    review: float,
    block: float,
    target: float,
    per_category: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, dict[str, object]]:
    """Per labelled category: metrics at review/block (``per_category``'s (review, block) for
    a category it names, e.g. a policy's), the threshold for `target` precision, the PR curve,
    and the mean score change of its positives and of the safe images under each perturbation
    (does a caption bar hide a positive, or raise a safe image?)."""
    out: dict[str, dict[str, object]] = {}
    for cat in sorted({s.label for s in samples if s.label != SAFE}):
        rev, blk = (per_category or {}).get(cat, (review, block))
        pairs = [(category_score(s.scores, cat), under(s.label, cat)) for s in samples]
        pos = [s for s in samples if under(s.label, cat)]
        safe = [s for s in samples if s.label == SAFE]
        out[cat] = {
            "positives": len(pos),
            "negatives": len(samples) - len(pos),
            "at_review": at_threshold(pairs, rev),
            "at_block": at_threshold(pairs, blk),
            "target_precision": target,
            "threshold_for_target": threshold_for_precision(pairs, target),
            "perturbation_mean_change": _changes(pos, cat),
            "perturbation_mean_change_safe": _changes(safe, cat),
            "pr_curve": [
                {"threshold": round(t, 4), "precision": p, "recall": r}
                for t, p, r in pr_curve(pairs)
            ],
        }
    return out


def plot_pr(cat: str, curve: Iterable[dict[str, float]], path: Path, size: int = 400) -> None:
    """A precision-recall curve as a PNG, drawn with Pillow."""
    pad = 40
    im = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(im)
    span = size - 2 * pad

    def xy(r: float, p: float) -> tuple[float, float]:
        return pad + r * span, size - pad - p * span

    d.rectangle([pad, pad, size - pad, size - pad], outline="black")
    for v in (0.0, 0.5, 1.0):
        d.text((pad + v * span - 8, size - pad + 6), f"{v:.1f}", fill="black")
        d.text((6, size - pad - v * span - 6), f"{v:.1f}", fill="black")
    d.text((size // 2 - 20, size - 16), "recall", fill="black")
    d.text((pad, 12), f"precision vs recall: {cat}", fill="black")
    pts = [xy(c["recall"], c["precision"]) for c in sorted(curve, key=lambda c: c["recall"])]
    if len(pts) > 1:
        d.line(pts, fill="blue", width=2)
    for x, y in pts:
        d.ellipse([x - 2, y - 2, x + 2, y + 2], fill="blue")
    im.save(path)
