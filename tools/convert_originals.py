"""Run the ORIGINAL models in their own runtimes on the sample images (tools/convert_models.py).

EfficientNet-Lite3: TensorFlow Lite's interpreter. NanoDet: TF.js itself (tfjs-converter on
the pure-JS CPU backend, the library @vladmandic/human runs it with) in node, via
tools/tfjs_reference.cjs. Their outputs are what the converted ONNX files are tested against.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# sample images the repository already ships (devkit/data; licences in devkit/data/README.md):
# a dog, a person with a dog and a horse, horses, an astronaut's portrait, and a flat wall
# frame of the doorknob sample video (a near-empty frame)
SAMPLES = [
    "devkit/data/eval/safe/darknet-dog.jpg",
    "devkit/data/eval/safe/darknet-person.jpg",
    "devkit/data/eval/safe/darknet-horses.jpg",
    "devkit/data/faces/skimage-astronaut.jpg",
    "devkit/data/eval/safe/doorknob-wall-0.jpg",
]
TFJS_NPM = [
    "@tensorflow/tfjs-core@4.22.0",
    "@tensorflow/tfjs-converter@4.22.0",
    "@tensorflow/tfjs-backend-cpu@4.22.0",
]


def load_samples() -> list[np.ndarray]:
    """The sample JPEGs as RGB uint8, decoded by TensorFlow (the venv has no cv2/PIL)."""
    import tensorflow as tf

    imgs = []
    for rel in SAMPLES:
        data = (REPO / rel).read_bytes()
        imgs.append(tf.io.decode_jpeg(data, channels=3).numpy())
    return imgs


def resize(imgs: list[np.ndarray], size: int) -> np.ndarray:
    """Squash each image to size x size (bilinear, like @vladmandic/human), uint8 NHWC.

    Only the stored reference inputs are made this way; the test feeds these exact pixels,
    so the scorer's own resizing never enters the comparison."""
    import tensorflow as tf

    out = [
        np.clip(np.round(tf.image.resize(im, (size, size), antialias=True).numpy()), 0, 255)
        for im in imgs
    ]
    return np.stack(out).astype(np.uint8)


def upscale(imgs: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize by integer indexing: exactly reproducible in any numpy."""
    idx = (np.arange(size) * imgs.shape[1]) // size
    return np.ascontiguousarray(imgs[:, idx][:, :, idx])


def reference_efficientnet(tflite: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    """The TFLite interpreter on each image (batch 1), outputs dequantized as TFLite defines."""
    import tensorflow as tf

    it = tf.lite.Interpreter(model_path=str(tflite), experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    pooled = next(
        t for t in it.get_tensor_details() if t["name"] == "efficientnet-lite3/model/head/Squeeze1"
    )

    def deq(t: dict[str, Any]) -> np.ndarray:
        scale, zero = t["quantization"]
        return (it.get_tensor(t["index"]).astype(np.float32) - zero) * np.float32(scale)

    probs, embs = [], []
    for im in images:
        it.set_tensor(inp["index"], im[None])
        it.invoke()
        probs.append(deq(out)[0])
        embs.append(deq(pooled)[0])
    return {"probabilities": np.stack(probs), "embedding": np.stack(embs)}


def tfjs_signature(spec: dict[str, Any]) -> dict[str, Any]:
    """A TF.js model.json's signature (top level, or under userDefinedMetadata)."""
    return spec.get("signature") or spec["userDefinedMetadata"]["signature"]


def reference_tfjs(
    model_json: Path, x: np.ndarray, work: Path, run: Callable[..., str]
) -> dict[str, np.ndarray]:
    """TF.js (tfjs-converter on the CPU backend, pinned) in node on the exact tensor ``x``;
    outputs keyed by their signature names (``Identity_2``)."""
    node_dir = work / "tfjs"
    node_dir.mkdir(exist_ok=True)
    if not (node_dir / "node_modules" / "@tensorflow" / "tfjs-converter").is_dir():
        run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(node_dir), *TFJS_NPM],
            node_dir,
        )
    stem = model_json.stem
    (work / f"{stem}_in.f32").write_bytes(x.astype("<f4").tobytes())
    env = {"NODE_PATH": str(node_dir / "node_modules"), "PATH": os.environ.get("PATH", "")}
    out_dir = work / f"{stem}_tfjs_out"
    run(
        [
            "node",
            str(REPO / "tools" / "tfjs_reference.cjs"),
            str(model_json),
            str(work / f"{stem}_in.f32"),
            ",".join(map(str, x.shape)),
            str(out_dir),
        ],
        work,
        env,
    )
    index = json.loads((out_dir / "outputs.json").read_text())
    return {
        o["name"]: np.fromfile(out_dir / o["file"], "<f4").reshape(o["shape"])
        for o in index["outputs"]
    }


def nanodet_summary(outs: dict[str, np.ndarray], top: int = 100) -> dict[str, np.ndarray]:
    """A compact, still strict reference: per image the ``top`` highest (anchor, class)
    scores with their indices, every anchor's best score, and the box logits of the anchors
    in that top list (full outputs would be 9 MB for five images)."""
    res: dict[str, np.ndarray] = {}
    for s in (8, 16, 32):
        sc, bx = outs[f"scores_s{s}"], outs[f"boxes_s{s}"]
        flat = sc.reshape(sc.shape[0], -1)
        idx = np.argsort(-flat, axis=1, kind="stable")[:, :top]
        res[f"scores_s{s}/top_index"] = idx.astype(np.int32)
        res[f"scores_s{s}/top_value"] = np.take_along_axis(flat, idx, 1)
        res[f"scores_s{s}/anchor_max"] = sc.max(axis=2)
        anchors = idx // sc.shape[2]
        res[f"boxes_s{s}/at_top"] = np.take_along_axis(bx, anchors[:, :, None], 1)
    return res


def blazeface_summary(outs: dict[str, np.ndarray], top: int = 20) -> dict[str, np.ndarray]:
    """Every anchor's logit, and the regressors of each image's ``top`` anchors."""
    logits = outs["logits"][:, :, 0]
    idx = np.argsort(-logits, axis=1, kind="stable")[:, :top]
    return {
        "logits": logits,
        "regressors/top_index": idx.astype(np.int32),
        "regressors/at_top": np.take_along_axis(outs["regressors"], idx[:, :, None], 1),
    }
