"""Runs every loaded model on a batch of images and merges their scores per taxonomy path."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np
from prometheus_client import Counter

from framewatch import images, records
from framewatch.metrics import stage_registry
from framewatch.settings.scoring import ScoringSettings
from scoring import cadence, fusion, pdq
from scoring.heads import heads_by_source
from scoring.model import CUDA, Model, batch_shapes, decode_image

# images each model inferred: a backbone counts each frame once however many heads read it
INFERRED = Counter(
    "framewatch_scoring_model_images", "images (or feature rows) a model inferred", ["model"],
    registry=stage_registry("scoring"),
)  # fmt: skip


@dataclass
class Scored:
    """What the models said about one image."""

    scores: dict[str, float] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    detections: list[records.Detection] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    per_model: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # costly models not run (cadence)


# a frame's scores, its PDQ hash and quality, and its decoded image (text reading reuses it);
# or why its JPEG was refused
FrameResult = tuple[Scored, str | None, int | None, np.ndarray] | images.ImageRejected


def preprocess_threads(setting: int | None, on_gpu: bool) -> int:
    """scoring.preprocess_threads resolved: as given (0: one per core), else one per core on a
    GPU, where the inference threads mostly wait for the device, and 1 on CPU, where they
    already keep every core busy."""
    if setting is None:
        setting = 0 if on_gpu else 1
    return setting or os.cpu_count() or 1


class Scorer:
    """All models of the model set; scores fused per path (settings scoring.fusion*), then
    damped on low-information frames (scoring.quality_floor). Costly models run on a cadence
    under ``scoring.frame_budget_ms`` (:mod:`scoring.cadence`)."""

    def __init__(self, models: list[Model], settings: ScoringSettings | None = None) -> None:
        self.models = models
        self.heads = heads_by_source(models)  # run on their backbone's output, never alone
        self.settings = settings or ScoringSettings()
        self.on_gpu = on_gpu = any(m.provider == CUDA for m in models)
        n = preprocess_threads(self.settings.preprocess_threads, on_gpu)
        # the cores are already shared out (batches side by side, the preprocessing pool):
        # OpenCV's own pool inside each resize only adds hand-offs, 0.4-0.8 CPU ms a frame
        cv2.setNumThreads(1)
        # JPEG decode and preprocessing of a batch, spread over the cores while no model runs
        self.pool = ThreadPoolExecutor(n, thread_name_prefix="prep") if n > 1 else None
        self.model_set = ",".join(sorted(m.ref for m in models))
        # the score cache keys on this: changing fusion or the gate must not serve old scores
        self.cache_tag = f"{self.model_set}|{fusion.signature(self.settings)}"
        self.image_models = [m for m in models if m.manifest.head_of is None]
        self.plan = cadence.plan({m.ref: m.manifest.cost_ms for m in self.image_models},
                                 self.settings.frame_budget_ms, on_gpu)  # fmt: skip
        shapes = batch_shapes(self.settings.batch_shapes, self.max_batch(), on_gpu)
        for m in models:
            m.use(self.pool, shapes)

    def warm_up(self) -> float:
        """Run every model once at each of its batch shapes (scoring.batch_shapes) before the
        first live frame; seconds it took (on a GPU, mostly building the cuDNN plans)."""
        t0 = time.perf_counter()
        for m in self.image_models:
            m.warm_up()
        return time.perf_counter() - t0

    def max_batch(self) -> int:
        """Frames a batch at most (scoring.max_batch; 0: 16 on a GPU, 4 on CPU)."""
        return self.settings.max_batch or (16 if self.on_gpu else 4)

    def inference_threads(self) -> int:
        """Batches scored at once (scoring.inference_threads; 0: one per core). On CPU each
        runs single-threaded; on a GPU each thread's JPEG decode and preprocessing is what
        feeds the models (an H200 box: 102-114 frames/s with 2, 304-317 with 16 threads)."""
        return self.settings.inference_threads or os.cpu_count() or 1

    def score(
        self,
        images: Sequence[np.ndarray],
        qualities: Sequence[int | None] | None = None,
        seqs: Sequence[int | None] | None = None,
        phases: Sequence[int] | None = None,
    ) -> list[Scored]:
        """Score images; `qualities` are their PDQ qualities (None: not gated), `seqs` their
        streams' sample numbers and `phases` their streams' :func:`cadence.phase` (the costly
        models' cadence; no seq: every model runs)."""
        out = [Scored() for _ in images]
        sc = self.settings
        cheap = [m for m in self.image_models if m.ref in self.plan.every_frame]
        self._run(cheap, images, out, range(len(out)))
        costly = [m for m in self.image_models if m.ref not in self.plan.every_frame]
        if costly:
            pos = list(seqs) if seqs is not None else [None] * len(out)
            ph = list(phases) if phases is not None else [0] * len(out)
            picked = [i for i, s in enumerate(out) if cadence.run_costly(
                pos[i], sc.costly_every,
                any(cadence.suspicious(v, sc.suspicion) for v in s.per_model.values()),
                ph[i])]  # fmt: skip
            self._run(costly, images, out, picked)
            for i in set(range(len(out))) - set(picked):
                out[i].skipped = [r for m in costly for r in self._refs(m)]
        qs = list(qualities) if qualities is not None else [None] * len(out)
        for s, q in zip(out, qs, strict=True):
            fused, s.models = fusion.fuse(s.per_model, sc.fusion, sc.fusion_default)
            s.scores = fusion.gate(fused, q, sc.quality_floor, sc.low_quality_factor)
            s.models = {p: r for p, r in s.models.items() if p in s.scores}
        return out

    def _refs(self, m: Model) -> list[str]:
        return [m.ref] + [h.ref for h in self.heads.get(m.manifest.name, [])]

    def score_frames(self, frames: Sequence[records.Frame], max_pixels: int) -> list[FrameResult]:
        """Frame records -> results: each JPEG decoded once, hashed only when ingest sent no
        PDQ, the batch scored. What the scoring service's micro-batcher runs (and
        benchmarks/gpu.py, in-process)."""
        out: list[FrameResult | None] = []
        imgs, idx, hashes = [], [], []

        def decode(jpeg: bytes) -> np.ndarray | images.ImageRejected:
            try:
                return decode_image(jpeg, max_pixels)
            except images.ImageRejected as e:
                return e

        jpegs = [f.jpeg for f in frames]
        pool = self.pool if len(frames) > 1 else None
        decoded = list(pool.map(decode, jpegs) if pool else map(decode, jpegs))
        for i, (f, img) in enumerate(zip(frames, decoded, strict=True)):
            if isinstance(img, images.ImageRejected):
                out.append(img)
                continue
            imgs.append(img)
            idx.append(i)
            out.append(None)
            hashes.append((f.pdq, f.pdq_quality) if f.pdq else pdq.compute(img))
        # the costly models' cadence, each stream at its own phase (scoring/cadence.py)
        seqs = [frames[i].seq for i in idx]
        every = self.settings.costly_every
        phases = [cadence.phase(frames[i].tenant, frames[i].stream_id, every) for i in idx]
        scored = self.score(imgs, [q for _, q in hashes], seqs, phases)
        for i, s, (h, q), img in zip(idx, scored, hashes, imgs, strict=True):
            out[i] = (s, h, q, img)
        return out  # type: ignore[return-value]

    def _run(
        self,
        models: list[Model],
        images: Sequence[np.ndarray],
        out: list[Scored],
        which: Sequence[int],
    ) -> None:
        """Run models on the images at the indices ``which``, filling their Scored; the heads
        reading a model run on its output right after it (one backbone run per frame)."""
        if not which:
            return
        batch = [images[i] for i in which]
        for m in models:
            t0 = time.perf_counter()
            results = m.run(batch)
            self._fill(m, results, out, which, t0)
            for h in self.heads.get(m.manifest.name, []):
                t0 = time.perf_counter()
                src = h.source
                assert src is not None
                rows = np.stack([r.features[src.output] for r in results])
                self._fill(h, h.run_features(rows), out, which, t0)

    @staticmethod
    def _fill(m: Model, results: list, out: list[Scored], which: Sequence[int], t0: float) -> None:
        ms = (time.perf_counter() - t0) * 1000 / len(which)
        INFERRED.labels(model=m.manifest.name).inc(len(which))
        for i, r in zip(which, results, strict=True):
            s = out[i]
            s.timings_ms[m.manifest.name] = round(ms, 3)
            s.detections.extend(r.detections)
            s.per_model[m.ref] = dict(r.scores)
