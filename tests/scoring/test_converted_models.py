"""The ONNX files converted by tools/convert_models.py: digests, contract, and agreement with
the ORIGINAL models (TFLite interpreter, TF.js) on the repository's sample images.

CI has no TensorFlow: the originals' outputs were stored by the conversion script in
scoring/models/reference-outputs.npz, with the exact input pixels, so only onnxruntime runs here.
Tolerances: EfficientNet-Lite3 is int8, and onnxruntime's integer kernels round differently from
TFLite's, so it gets a few quantization steps (probabilities within 0.06 absolute, embedding
cosine >= 0.99 and mean difference under 2 steps of 0.0235) and the same top-1 class; NanoDet
and BlazeFace are float32 in both runtimes and must agree to 1e-4 (1e-3 for logits and pixel
offsets).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from scoring import onnxprep

MODELS = Path(str(resources.files("scoring") / "models"))
PROVENANCE = json.loads((MODELS / "PROVENANCE.json").read_text())
REF = dict(np.load(MODELS / "reference-outputs.npz"))
CPU = ["CPUExecutionProvider"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@cache
def session(name: str) -> ort.InferenceSession:
    """The converted file as it is; on an x86 CPU without VNNI its int8 weights stored as
    uint8 + 128 (the same values, ``onnxprep.unsigned_weights``), because ORT's uint8 x int8
    kernels saturate there and would measure the CPU, not the conversion (0.075 off)."""
    model = onnx.load(str(MODELS / f"{name}.onnx"))
    if onnxprep.int8_sums_saturate():
        onnxprep.unsigned_weights(model)
    return ort.InferenceSession(model.SerializeToString(), providers=CPU)


def run(name: str, x: np.ndarray) -> dict[str, np.ndarray]:
    s = session(name)
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, {"images": x}), strict=True))


def nanodet_input(images: np.ndarray) -> np.ndarray:
    """As the script fed TF.js: nearest-upscaled to 416, pixel / 255, NCHW."""
    idx = (np.arange(416) * images.shape[1]) // 416
    up = images[:, idx][:, :, idx]
    return np.ascontiguousarray((up.astype(np.float32) / np.float32(255)).transpose(0, 3, 1, 2))


def efficientnet_disagreement(out: dict[str, np.ndarray], p_tol: float = 0.06) -> list[str]:
    """What differs beyond tolerance from the TFLite outputs (empty: agrees)."""
    p, e = out["probabilities"], out["embedding"]
    rp, re = REF["efficientnet-lite3/probabilities"], REF["efficientnet-lite3/embedding"]
    bad = []
    if not np.array_equal(p.argmax(1), rp.argmax(1)):
        bad.append(f"top-1 {p.argmax(1)} vs TFLite {rp.argmax(1)}")
    if np.abs(p - rp).max() > p_tol:
        bad.append(f"probabilities differ by {np.abs(p - rp).max():.3f}")
    cos = (e * re).sum(1) / np.linalg.norm(e, axis=1) / np.linalg.norm(re, axis=1)
    if cos.min() < 0.99:
        bad.append(f"embedding cosine {cos.min():.4f}")
    if np.abs(e - re).mean() > 2 * 0.0235:
        bad.append(f"embedding mean difference {np.abs(e - re).mean():.4f}")
    return bad


def nanodet_disagreement(out: dict[str, np.ndarray], atol: float = 1e-4) -> list[str]:
    """Compare with the stored TF.js summary: the top (anchor, class) scores, every anchor's
    best score, and the box logits of the top anchors."""
    bad = []
    for s in (8, 16, 32):
        sc, bx = out[f"scores_s{s}"], out[f"boxes_s{s}"]
        idx = REF[f"nanodet/scores_s{s}/top_index"].astype(np.int64)
        checks = {
            "top scores": (
                np.take_along_axis(sc.reshape(len(sc), -1), idx, 1),
                REF[f"nanodet/scores_s{s}/top_value"],
            ),
            "anchor max": (sc.max(2), REF[f"nanodet/scores_s{s}/anchor_max"]),
            "box logits": (
                np.take_along_axis(bx, (idx // sc.shape[2])[:, :, None], 1),
                REF[f"nanodet/boxes_s{s}/at_top"],
            ),
        }
        for what, (got, want) in checks.items():
            diff = np.abs(got - want).max()
            if diff > (atol if what != "box logits" else 10 * atol):
                bad.append(f"stride {s} {what} differ by {diff:.2e}")
    return bad


def blazeface_input(images: np.ndarray) -> np.ndarray:
    """As the script fed TF.js: nearest-resized to 256, pixel / 127 - 1, NHWC."""
    idx = (np.arange(256) * images.shape[1]) // 256
    small = images[:, idx][:, :, idx]
    return small.astype(np.float32) / np.float32(127) - np.float32(1)


def blazeface_disagreement(out: dict[str, np.ndarray], atol: float = 1e-4) -> list[str]:
    """Every anchor's logit, and the regressors of the top anchors, against TF.js."""
    bad = []
    got, want = out["logits"][:, :, 0], REF["blazeface/logits"]
    if not np.allclose(got, want, rtol=1e-5, atol=10 * atol):  # -1100 on empty anchors
        bad.append(f"logits differ by {np.abs(got - want).max():.2e}")
    idx = REF["blazeface/regressors/top_index"].astype(np.int64)
    got = np.take_along_axis(out["regressors"], idx[:, :, None], 1)
    diff = np.abs(got - REF["blazeface/regressors/at_top"]).max()
    if diff > 10 * atol:  # in 256-px pixels
        bad.append(f"regressors differ by {diff:.2e}")
    return bad


# ----------------------------------------------------------------------------- digests
@pytest.mark.parametrize("name", sorted(PROVENANCE["models"]))
def test_file_digests_match_the_provenance(name: str) -> None:
    entry = PROVENANCE["models"][name]["output"]
    repo = MODELS.parents[1]
    assert sha256(repo / entry["file"]) == entry["sha256"], f"{entry['file']} changed"
    assert sha256(repo / entry["labels"]) == entry["labels_sha256"], f"{entry['labels']} changed"
    assert (repo / entry["file"]).stat().st_size == entry["bytes"]


def test_every_onnx_file_has_a_provenance_entry() -> None:
    recorded = {Path(m["output"]["file"]).name for m in PROVENANCE["models"].values()}
    assert {p.name for p in MODELS.glob("*.onnx")} == recorded


def test_provenance_records_source_tools_command_and_licence() -> None:
    for name, m in PROVENANCE["models"].items():
        src = m["source"]
        assert src["version"] and len(src["archive_sha256"]) == 64, name
        assert src["model_file"] in src["files"], name
        assert "tf2onnx.convert" in m["conversion"]["command"], name
        assert m["licence"] and len(m["licence_reasoning"]) > 100, name
    for tool in ("tensorflow", "tf2onnx", "onnx", "opset"):
        assert PROVENANCE["tools"][tool], tool


# ----------------------------------------------------------------------------- contract
@pytest.mark.parametrize("name", sorted(PROVENANCE["models"]))
def test_names_and_shapes_are_the_recorded_contract(name: str) -> None:
    iface = PROVENANCE["models"][name]["interface"]
    s = session(name)
    (inp,) = s.get_inputs()
    assert (inp.name, inp.type) == (iface["input"]["name"], "tensor(float)")
    assert inp.shape == iface["input"]["shape"]
    assert [o.name for o in s.get_outputs()] == iface["output_order"]
    assert sorted(iface["outputs"]) == sorted(iface["output_order"])
    for o in s.get_outputs():
        assert o.shape == iface["outputs"][o.name]["shape"], o.name


def test_label_files_give_the_class_order() -> None:
    imagenet = (MODELS / "efficientnet-lite3.labels.txt").read_text().splitlines()
    coco = (MODELS / "nanodet.labels.txt").read_text().splitlines()
    assert len(imagenet) == 1000 and len(coco) == 80
    # ImageNet-1k index order, no background class at 0
    assert (imagenet[0], imagenet[413], imagenet[763], imagenet[845]) == (
        "tench", "assault rifle", "revolver", "syringe")  # fmt: skip
    assert [coco[i] for i in (0, 39, 40, 43, 76)] == [
        "person", "bottle", "wine_glass", "knife", "scissors"]  # fmt: skip


# ----------------------------------------------------------------------------- agreement
def test_efficientnet_agrees_with_the_tflite_original() -> None:
    out = run("efficientnet-lite3", REF["images"].astype(np.float32))
    assert efficientnet_disagreement(out) == []


def test_efficientnet_check_catches_a_wrong_input() -> None:
    """The tolerance is tight enough to see a colour-order mistake (BGR fed as RGB)."""
    out = run("efficientnet-lite3", REF["images"][..., ::-1].astype(np.float32))
    assert efficientnet_disagreement(out) != []


def test_nanodet_agrees_with_the_tfjs_original() -> None:
    out = run("nanodet", nanodet_input(REF["images"]))
    assert nanodet_disagreement(out) == []


def test_nanodet_check_catches_a_wrong_input() -> None:
    out = run("nanodet", nanodet_input(np.ascontiguousarray(REF["images"][..., ::-1])))
    assert nanodet_disagreement(out) != []


def test_blazeface_agrees_with_the_tfjs_original() -> None:
    assert blazeface_disagreement(run("blazeface", blazeface_input(REF["images"]))) == []


def test_blazeface_finds_the_astronauts_face_and_none_on_the_wall() -> None:
    logits = run("blazeface", blazeface_input(REF["images"]))["logits"][:, :, 0]
    best = 1 / (1 + np.exp(-logits.max(1)))
    score = dict(zip([Path(s).stem for s in REF["samples"]], best, strict=True))
    assert score["skimage-astronaut"] > 0.8 and score["doorknob-wall-0"] < 0.2, score


def test_blazeface_check_catches_a_wrong_input() -> None:
    x = blazeface_input(np.ascontiguousarray(REF["images"][..., ::-1]))
    assert blazeface_disagreement(run("blazeface", x)) != []


INPUTS = {
    "efficientnet-lite3": lambda im: im.astype(np.float32),
    "nanodet": nanodet_input,
    "blazeface": blazeface_input,
}


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_batch_dimension_is_dynamic(name: str) -> None:
    """One image alone gives what it gives inside a batch of five."""
    x = INPUTS[name](REF["images"])
    batch, one = run(name, x), run(name, x[2:3])
    for k, v in one.items():
        np.testing.assert_allclose(v[0], batch[k][2], atol=1e-5, err_msg=k)


def test_efficientnet_sees_what_the_samples_show() -> None:
    """A sanity check on the labels: the dog photo's top-5 holds a dog breed, the astronaut's
    a helmet; the flat wall gets no confident class."""
    labels = (MODELS / "efficientnet-lite3.labels.txt").read_text().splitlines()
    p = run("efficientnet-lite3", REF["images"].astype(np.float32))["probabilities"]
    samples = [Path(s).stem for s in REF["samples"]]
    top5 = {s: [labels[i] for i in np.argsort(-p[k])[:5]] for k, s in enumerate(samples)}
    assert {"malamute", "German shepherd"} & set(top5["darknet-dog"]), top5
    assert "football helmet" in top5["skimage-astronaut"] or "crash helmet" in top5[
        "skimage-astronaut"], top5  # fmt: skip
    assert p[samples.index("doorknob-wall-0")].max() < 0.2
