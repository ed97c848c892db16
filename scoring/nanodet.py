"""NanoDet object detection (COCO-80): the head's per-level outputs -> labelled boxes.

NanoDet (RangiLyu, Apache-2.0) is a GFL detector: at every cell of three feature levels
(strides 8, 16, 32 on a 416-px input: 52x52, 26x26, 13x13 cells) it gives one sigmoid score a
class and, for each side of the box, a distribution over ``reg_max + 1`` distance bins (in
units of the level's stride). The box is the cell centre moved out by the expected distance to
each side. So unlike YOLOv8 (one tensor, boxes in pixels) the model has six outputs, found here
by shape: ``[N, cells, classes]`` and ``[N, cells, 4 * (reg_max + 1)]`` per level.

Scores over ``output.score_threshold`` are kept per class (a cell may hold a person and the
knife in their hand), then non-maximum suppression per class (``output.iou_threshold``), as
NanoDet's own post-processing does. ``output.counts`` turns the detections of one label into
"at least N" scores (the N-th best detection's score: a fuzzy AND of N of them), which is how a
person count reaches policy rules; every detection also keeps its box in the Scores record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from framewatch import records
from scoring import registry
from scoring.errors import ModelError
from scoring.model import Model, Result

MAX_DETECTIONS = 100  # per frame, after NMS (NanoDet's own cap)


class Level:
    """One feature level: its grid side, stride and the two output indices."""

    def __init__(self, side: int, stride: float, cls: int, box: int) -> None:
        self.side, self.stride, self.cls, self.box = side, stride, cls, box


def levels(shapes: Sequence[Sequence[object]], n_classes: int, size: int) -> list[Level]:
    """Pair the outputs by cell count: class scores have ``n_classes`` channels, boxes a
    multiple of 4. Refuses outputs that do not make square levels of one input ``size``."""
    by_cells: dict[int, dict[str, int]] = {}
    for i, shape in enumerate(shapes):
        if len(shape) != 3 or not all(isinstance(d, int) for d in shape[1:]):
            raise ModelError(f"nanodet output {i} has shape {list(shape)}, not [N, cells, C]")
        cells, ch = int(shape[1]), int(shape[2])  # type: ignore[call-overload]
        kind = "cls" if ch == n_classes else "box" if ch % 4 == 0 else None
        if kind is None:
            raise ModelError(f"nanodet output {i}: {ch} channels, neither {n_classes} nor 4*bins")
        by_cells.setdefault(cells, {})[kind] = i
    out = []
    for cells, pair in sorted(by_cells.items(), reverse=True):  # finest level first
        side = round(cells**0.5)
        if side * side != cells or set(pair) != {"cls", "box"}:
            raise ModelError(f"nanodet level of {cells} cells is not square with scores and boxes")
        out.append(Level(side, size / side, pair["cls"], pair["box"]))
    return out


def decode(
    outputs: Sequence[np.ndarray], lvls: Sequence[Level], score_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's outputs (batch dim dropped) -> boxes [n, 4] as x0, y0, x1, y1 in input
    pixels, scores [n] and class indices [n], before NMS."""
    boxes, scores, classes = [], [], []
    for lv in lvls:
        cls = np.asarray(outputs[lv.cls], np.float32)
        # the flat positions, split: np.nonzero of the 2-D mask gives the same pairs in the
        # same order but took 10 of the 11 ms a batch of 16 spent here (0.53 ms a frame)
        cell, klass = np.divmod(np.flatnonzero(cls >= score_threshold), cls.shape[1])
        if not len(cell):
            continue
        reg = np.asarray(outputs[lv.box], np.float32)[cell]
        bins = reg.shape[1] // 4
        logits = reg.reshape(-1, 4, bins)
        p = np.exp(logits - logits.max(axis=2, keepdims=True))
        p /= p.sum(axis=2, keepdims=True)
        dist = (p @ np.arange(bins, dtype=np.float32)) * lv.stride  # left, top, right, bottom
        cx = (cell % lv.side + 0.5) * lv.stride
        cy = (cell // lv.side + 0.5) * lv.stride
        boxes.append(np.stack([cx - dist[:, 0], cy - dist[:, 1],
                               cx + dist[:, 2], cy + dist[:, 3]], axis=1))  # fmt: skip
        scores.append(cls[cell, klass])
        classes.append(klass)
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    return np.concatenate(boxes), np.concatenate(scores), np.concatenate(classes)


def nms(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, threshold: float, iou: float
) -> np.ndarray:
    """Indices kept by per-class non-maximum suppression, best first, at most MAX_DETECTIONS."""
    if not len(boxes):
        return np.zeros(0, np.int64)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.tolist(), classes.tolist(),
                                   threshold, iou, top_k=MAX_DETECTIONS)  # fmt: skip
    keep = np.asarray(keep, np.int64).reshape(-1)
    return keep[np.argsort(-scores[keep], kind="stable")]


def count_scores(
    detections: Sequence[records.Detection], counts: Sequence[registry.CountSpec]
) -> dict[str, float]:
    """``at_least`` detections of a label: the at_least-th best one's score (0 with fewer)."""
    out: dict[str, float] = {}
    for c in counts:
        ranked = sorted((d.score for d in detections if d.label == c.label), reverse=True)
        v = ranked[c.at_least - 1] if len(ranked) >= c.at_least else 0.0
        out[c.category] = max(out.get(c.category, 0.0), v)
    return out


class NanoDetModel(Model):
    """A NanoDet detector (manifest ``output.decoding: nanodet``)."""

    def __init__(self, manifest: registry.Manifest, providers: list[Any], **session: Any) -> None:
        super().__init__(manifest, providers, **session)  # scoring.intra_op_threads, spin_wait
        shapes = [o.shape for o in self.session.get_outputs()]
        self.levels = levels(shapes, len(manifest.output.labels), manifest.image_input.size[0])
        batch = self.session.get_inputs()[0].shape[0]
        self.batch = batch if isinstance(batch, int) else None  # None: any batch size

    def _outputs(self, batch: np.ndarray, rows: int | None = None) -> list[list[np.ndarray]]:
        """Every output of each of the batch's first ``rows`` images (all by default; one run
        at a time if the graph is fixed)."""
        n = len(batch) if rows is None else rows
        if self.batch is None:
            outs = self.session_run(batch, n)
            return [[o[i] for o in outs] for i in range(n)]
        return [[o[0] for o in self.session.run(None, {self.input_name: x[None]})]
                for x in batch[:n]]  # fmt: skip

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """The first output of each image (what a benchmark times)."""
        return np.stack([o[0] for o in self._outputs(batch)])

    def run(self, images: list[np.ndarray]) -> list[Result]:
        if not images:
            return []
        batch, _ = self.prepare(images)  # boxes come in input pixels of a plain resize
        return [self._result(f) for f in self._objects(batch, len(images))]

    def objects(self, bgr: np.ndarray) -> list[tuple[str, float, tuple[float, ...]]]:
        """Every class's detections after NMS, best first: (label, score, normalised box)."""
        return self._objects(self.preprocess(bgr)[0][None])[0]

    def _objects(
        self, batch: np.ndarray, rows: int | None = None
    ) -> list[list[tuple[str, float, tuple[float, ...]]]]:
        spec = self.manifest.output
        w, h = self.manifest.image_input.size  # boxes come in input pixels of a plain resize
        out = []
        for outs in self._outputs(batch, rows):
            boxes, scores, classes = decode(outs, self.levels, spec.score_threshold)
            found = []
            for i in nms(boxes, scores, classes, spec.score_threshold, spec.iou_threshold):
                box = np.clip(boxes[i] / (w, h, w, h), 0.0, 1.0)
                found.append((spec.labels[int(classes[i])], float(min(scores[i], 1.0)),
                              tuple(float(v) for v in box)))  # fmt: skip
            out.append(found)
        return out

    def _result(self, found: list[tuple[str, float, tuple[float, ...]]]) -> Result:
        """The mapped and counted labels' detections (of 80 classes, only they are evidence)."""
        spec = self.manifest.output
        wanted = set(self.manifest.labels) | {c.label for c in spec.counts}
        res = Result()
        for lab, score, box in found:
            if lab not in wanted:
                continue
            res.raw[lab] = max(res.raw.get(lab, 0.0), score)
            res.detections.append(records.Detection(
                label=lab, category=self.manifest.labels.get(lab), score=score,
                box=box, model=self.ref))  # type: ignore[arg-type]  # fmt: skip
        res.scores = self._map(res.raw)
        for cat, v in count_scores(res.detections, spec.counts).items():
            res.scores[cat] = max(res.scores.get(cat, 0.0), v)
        return res
