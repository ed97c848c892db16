"""Runs every loaded model on a batch of images and merges their scores per taxonomy path."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from framewatch import records
from scoring.model import Model


@dataclass
class Scored:
    """What the models said about one image."""

    scores: dict[str, float] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    detections: list[records.Detection] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)


class Scorer:
    """All models of the model set; the highest score wins per path, with its model ref."""

    def __init__(self, models: list[Model]) -> None:
        self.models = models
        self.model_set = ",".join(sorted(m.ref for m in models))

    def score(self, images: Sequence[np.ndarray]) -> list[Scored]:
        out = [Scored() for _ in images]
        for m in self.models:
            t0 = time.perf_counter()
            results = m.run(list(images))
            ms = (time.perf_counter() - t0) * 1000 / max(len(images), 1)
            for s, r in zip(out, results, strict=True):
                s.timings_ms[m.manifest.name] = round(ms, 3)
                s.detections.extend(r.detections)
                for path, v in r.scores.items():
                    if v >= s.scores.get(path, -1.0):
                        s.scores[path] = float(min(max(v, 0.0), 1.0))
                        s.models[path] = m.ref
        return out
