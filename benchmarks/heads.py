# ruff: noqa: E402
"""What custom categories cost: the backbone alone vs the backbone with N heads on its embedding.

Heads (``framewatch model train``) read efficientnet-lite3's embedding, computed once per frame
(scoring/heads.py). This scores the same batch of sample-video frames with the backbone alone
and with 1 and 10 heads (logistic regressions fitted on the frames' own embeddings and exported
with skl2onnx, as `model train` does), and prints ms a frame. The ceiling is the backbone
alone: heads should add almost nothing. Last line JSON.

    python benchmarks/heads.py [--frames 16] [--repeat 5]
"""

from __future__ import annotations

import sys
from pathlib import Path

# run as a script, this file's folder comes first on sys.path and would shadow the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse
import json
import tempfile
import time

import av
import numpy as np

from devkit.testdata import video
from scoring import train
from scoring.model import Model, load_models
from scoring.scorer import Scorer

CPU = ["CPUExecutionProvider"]


def frames(name: str, every: int, count: int) -> list[np.ndarray]:
    """BGR frames of a sample video, every Nth decoded frame."""
    out: list[np.ndarray] = []
    with av.open(str(video(name))) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % every == 0:
                out.append(f.to_ndarray(format="bgr24"))
            if len(out) >= count:
                break
    return out


def _heads(backbone: Model, imgs: list[np.ndarray], n: int, folder: Path) -> list[str]:
    """n heads, each a probe separating a random half of the frames' embeddings."""
    x = np.stack([r.features["embedding"] for r in backbone.run(imgs)])
    rng = np.random.default_rng(0)
    names = []
    for i in range(n):
        y = np.zeros(len(x), int)
        y[rng.permutation(len(x))[: len(x) // 2]] = 1
        name = f"head{i}"
        (folder / f"{name}.onnx").write_bytes(train.fit_onnx(x, y))
        cv = {"positives": int(y.sum()), "negatives": int(len(y) - y.sum()), "folds": 0,
              "threshold": 0.5, "precision": 0, "recall": 0}  # fmt: skip
        manifest = train.manifest(name, "gambling.casino", "efficientnet-lite3.embedding", cv)
        (folder / f"{name}.yaml").write_text(manifest)
        names.append(name)
    return names


def _ms_per_frame(scorer: Scorer, imgs: list[np.ndarray], repeat: int) -> tuple[float, float]:
    """(whole scoring, the heads' own share) in ms a frame, best of ``repeat`` batches: the
    scorer's per-model timings separate the heads from the backbone on a loaded machine."""
    best, heads = float("inf"), float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = scorer.score(imgs)
        best = min(best, (time.perf_counter() - t0) * 1000 / len(imgs))
        own = sum(v for k, v in out[0].timings_ms.items() if k.startswith("head"))
        heads = min(heads, own)
    return best, heads


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    imgs = frames("chair-orig-22-sd-bar.mp4", every=15, count=args.frames)
    (backbone,) = load_models(["efficientnet-lite3"], [], CPU)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        names = _heads(backbone, imgs, 10, folder)
        own: dict[str, float] = {}
        for n in (0, 1, 10):
            models = load_models(["efficientnet-lite3", *names[:n]], [folder], CPU)
            total, heads = _ms_per_frame(Scorer(models), imgs, args.repeat)
            out[f"heads_{n}"], own[f"heads_{n}"] = round(total, 2), round(heads, 3)
            print(f"backbone + {n:>2} heads: {total:7.2f} ms a frame, the heads' own "
                  f"{heads:.3f} ms (best of {args.repeat}, batches of {len(imgs)})")  # fmt: skip
    per_head = own["heads_10"] / 10
    print(f"ceiling: the backbone alone, {out['heads_0']:.2f} ms a frame; each head adds "
          f"{per_head:.3f} ms (whole-run differences are this box's load, not the heads)")  # fmt: skip
    print(json.dumps({"frames": len(imgs), "ms_per_frame": out, "heads_own_ms": own,
                      "ms_per_head": round(per_head, 3)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
