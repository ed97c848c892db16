"""`framewatch model train`: a custom category in minutes, as a linear probe on the embedding.

A platform's own hate symbols, logos or game overlays need no new network: the backbone the
scorer already runs (efficientnet-lite3) gives a 1280-d embedding of every frame, and a
class-balanced logistic regression on it (scikit-learn) separates a few dozen examples from the
rest. The probe is exported to ONNX (skl2onnx) with a manifest whose ``input.from`` names that
embedding, so the scorer loads it like any model and runs it on the backbone's output, once per
frame (scoring/heads.py). Cross-validated precision and recall say how far to trust it.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from framewatch import taxonomy
from framewatch.errors import FramewatchError, TaxonomyError
from scoring import registry
from scoring.builtin import BUILTIN
from scoring.errors import ScoringError
from scoring.evaluate import IMAGE_EXT
from scoring.model import Model, decode_image

MIN_PER_CLASS = 3  # fewer cannot be cross-validated at all (k >= 2 folds, each with a positive)
MAX_FOLDS = 5
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class TrainError(ScoringError):
    """The probe cannot be trained as asked (says what to change)."""


@dataclass
class Embedded:
    """The embeddings of the readable images, and the files that could not be read."""

    x: np.ndarray
    y: np.ndarray
    files: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def images_in(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise TrainError(f"{what} {folder} is not a folder: give a folder of images")
    out = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXT)
    if not out:
        raise TrainError(f"{what} {folder} holds no image ({', '.join(sorted(IMAGE_EXT))})")
    return out


def embed(
    backbone: Model,
    output: str,
    positives: list[Path],
    negatives: list[Path],
    max_pixels: int,
    progress: Callable[[str], None] | None = None,
) -> Embedded:
    """Run the backbone on every image once; unreadable files are skipped and listed."""
    xs: list[np.ndarray] = []
    ys: list[int] = []
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    todo = [(p, 1) for p in positives] + [(p, 0) for p in negatives]
    for i, (path, label) in enumerate(todo, 1):
        try:
            img = decode_image(path.read_bytes(), max_pixels)
        except (OSError, FramewatchError) as e:
            skipped.append((path, str(e)))
            continue
        (res,) = backbone.run([img])
        xs.append(res.features[output])
        ys.append(label)
        files.append(path)
        if progress and (i % 10 == 0 or i == len(todo)):
            progress(f"embedded {i}/{len(todo)} images")
    width = int(xs[0].shape[0]) if xs else 0
    return Embedded(np.asarray(xs, np.float32).reshape(len(xs), width), np.asarray(ys),
                    files, skipped)  # fmt: skip


def _pipeline() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000, C=0.1)
    )


def cross_validate(x: np.ndarray, y: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Stratified k-fold (k = min(5, the smaller class)) precision and recall at ``threshold``."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    if min(n_pos, n_neg) < MIN_PER_CLASS:
        raise TrainError(
            f"too few images to train and cross-validate: {n_pos} positive, {n_neg} negative "
            f"readable; give at least {MIN_PER_CLASS} of each (20+ of each for a useful estimate)"
        )
    k = min(MAX_FOLDS, n_pos, n_neg)
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=0)
    p = cross_val_predict(_pipeline(), x, y, cv=folds, method="predict_proba")[:, 1]
    hit = p >= threshold
    tp, fp = int((hit & (y == 1)).sum()), int((hit & (y == 0)).sum())
    fn = int((~hit & (y == 1)).sum())
    return {"folds": k, "threshold": threshold, "positives": n_pos, "negatives": n_neg,
            "precision": round(tp / (tp + fp), 4) if tp + fp else 0.0,
            "recall": round(tp / (tp + fn), 4) if tp + fn else 0.0,
            "tp": tp, "fp": fp, "fn": fn}  # fmt: skip


def fit_onnx(x: np.ndarray, y: np.ndarray) -> bytes:
    """Fit on every image and export (N, width) float -> ``probabilities`` (N, 2) to ONNX;
    checked against scikit-learn's own probabilities before it is returned."""
    import onnxruntime as ort
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    model = _pipeline().fit(x, y)
    onx = to_onnx(
        model,
        initial_types=[("embedding", FloatTensorType([None, x.shape[1]]))],
        options={"zipmap": False},
        final_types=None,
    )
    data = onx.SerializeToString()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = sess.run(["probabilities"], {"embedding": x[:16]})[0]
    if not np.allclose(got, model.predict_proba(x[:16]), atol=1e-4):
        raise TrainError("the exported ONNX head disagrees with scikit-learn; report this bug")
    return data


def manifest(name: str, category: str, source: str, cv: dict[str, Any]) -> str:
    """The head's manifest (YAML), with how it was trained as comments."""
    now = dt.datetime.now(dt.UTC)
    body = {
        "name": name,
        "version": now.strftime("%Y%m%d.%H%M%S"),
        "licence": "trained by this platform on its own images (framewatch model train)",
        "source": {"path": f"{name}.onnx"},
        "input": {"from": source},
        "output": {
            "decoding": "probabilities",
            "tensor": "probabilities",
            "labels": ["other", name],
        },
        "labels": {name: category},
    }
    head = (
        f"# framewatch model train {name} --category {category}, {now:%Y-%m-%d %H:%M} UTC\n"
        f"# {cv['positives']} positive and {cv['negatives']} negative images; {cv['folds']}-fold "
        f"cross-validation at {cv['threshold']}: precision {cv['precision']}, recall "
        f"{cv['recall']}\n"
    )
    return head + yaml.safe_dump(body, sort_keys=False)


def check_target(name: str, category: str, tax: taxonomy.Taxonomy) -> None:
    if not NAME.match(name):
        raise TrainError(f"model name {name!r}: use lowercase letters, digits, '.', '_', '-'")
    if name in BUILTIN:
        raise TrainError(f"model name {name!r} is a built-in model's: choose another name")
    try:
        tax.validate(category)
    except TaxonomyError as e:
        raise TrainError(
            f"--category {category}: {e}. A category of your own goes in your taxonomy file "
            "(setting taxonomy_file, FRAMEWATCH_TAXONOMY_FILE), e.g. 'hate:\\n  children:\\n"
            "    symbols:\\n      children: [my_symbol]'"
        ) from None


def source_of(spec: str) -> registry.HeadInput:
    """``--from MODEL.OUTPUT`` parsed, or a TrainError saying the form."""
    try:
        return registry.HeadInput.model_validate({"from": spec})
    except ValueError:
        raise TrainError(
            f"--from {spec!r}: give MODEL.OUTPUT, e.g. efficientnet-lite3.embedding"
        ) from None


def train(
    name: str,
    category: str,
    positive: Path,
    negative: Path,
    out: Path,
    backbone: Model,
    source: str,
    tax: taxonomy.Taxonomy,
    max_pixels: int,
) -> dict[str, Any]:
    """Embed, cross-validate, fit, export; writes NAME.onnx and NAME.yaml into ``out``."""
    check_target(name, category, tax)
    pos, neg = images_in(positive, "--positive"), images_in(negative, "--negative")
    output = source.rpartition(".")[2]
    if output not in backbone.output_names or output == backbone.label_output:
        feats = [n for n in backbone.output_names if n != backbone.label_output]
        raise TrainError(f"--from {source}: {backbone.ref} has no feature output {output!r}; "
                         f"its feature outputs: {feats}")  # fmt: skip

    def progress(msg: str) -> None:
        print(f"train: {msg}", file=sys.stderr)

    emb = embed(backbone, output, pos, neg, max_pixels, progress)
    for path, why in emb.skipped:
        print(f"train: skipped {path}: {why}", file=sys.stderr)
    cv = cross_validate(emb.x, emb.y)
    progress(f"{cv['folds']}-fold cross-validation: precision {cv['precision']}, "
             f"recall {cv['recall']}; fitting on all {len(emb.y)} images")  # fmt: skip
    data = fit_onnx(emb.x, emb.y)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.onnx").write_bytes(data)
    (out / f"{name}.yaml").write_text(manifest(name, category, source, cv))
    registry.load_file(out / f"{name}.yaml", tax)  # what the scorer will load, checked now
    return {"model": name, "category": category, "from": source, "cross_validation": cv,
            "skipped": [{"file": str(p), "error": w} for p, w in emb.skipped],
            "manifest": str(out / f"{name}.yaml"), "onnx": str(out / f"{name}.onnx")}  # fmt: skip
