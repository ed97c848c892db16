"""Runs every loaded model on a batch of images and merges their scores per taxonomy path."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from framewatch import records
from framewatch.settings.scoring import ScoringSettings
from scoring import fusion
from scoring.model import Model


@dataclass
class Scored:
    """What the models said about one image."""

    scores: dict[str, float] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    detections: list[records.Detection] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    per_model: dict[str, dict[str, float]] = field(default_factory=dict)


class Scorer:
    """All models of the model set; scores fused per path (settings scoring.fusion*), then
    damped on low-information frames (scoring.quality_floor)."""

    def __init__(self, models: list[Model], settings: ScoringSettings | None = None) -> None:
        self.models = models
        self.settings = settings or ScoringSettings()
        self.model_set = ",".join(sorted(m.ref for m in models))
        # the score cache keys on this: changing fusion or the gate must not serve old scores
        self.cache_tag = f"{self.model_set}|{fusion.signature(self.settings)}"

    def score(
        self, images: Sequence[np.ndarray], qualities: Sequence[int | None] | None = None
    ) -> list[Scored]:
        """Score images; `qualities` are their PDQ qualities (None: not gated)."""
        out = [Scored() for _ in images]
        for m in self.models:
            t0 = time.perf_counter()
            results = m.run(list(images))
            ms = (time.perf_counter() - t0) * 1000 / max(len(images), 1)
            for s, r in zip(out, results, strict=True):
                s.timings_ms[m.manifest.name] = round(ms, 3)
                s.detections.extend(r.detections)
                s.per_model[m.ref] = dict(r.scores)
        sc = self.settings
        qs = list(qualities) if qualities is not None else [None] * len(out)
        for s, q in zip(out, qs, strict=True):
            fused, s.models = fusion.fuse(s.per_model, sc.fusion, sc.fusion_default)
            s.scores = fusion.gate(fused, q, sc.quality_floor, sc.low_quality_factor)
            s.models = {p: r for p, r in s.models.items() if p in s.scores}
        return out
