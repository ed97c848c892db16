"""Quantized (QDQ) ONNX models with int8 activations, presented so that ONNX Runtime's CPU
kernels take every quantized operator.

A QDQ model marks each quantized tensor with a QuantizeLinear -> DequantizeLinear pair; ONNX
Runtime fuses ``DQ -> Conv -> Q`` into one integer QLinearConv only when the input and output
pairs have the same type. On x86 it first rewrites int8 activations as uint8 (its
QDQS8ToU8Transformer), but it skips a pair whose quantized tensor is read twice, as a residual
block's is. Every convolution beside such a tensor then keeps int8 on one side, uint8 on the
other, and runs in float on dequantized weights, with transposes around it. In
EfficientNet-Lite3 (TFLite int8) that was 23 of its 73 convolutions and all 17 additions:
38 CPU ms an image instead of 16 (docs/scoring.md, "Integer kernels for the int8 classifier").

An int8 value q with zero point z and uint8 value q + 128 with zero point z + 128 stand for the
same real number, and saturate at the same ends, so switching every activation pair to uint8
here changes no value the graph computes; ONNX Runtime then fuses every pair. Weights stay int8
(uint8 activations with int8 weights are what its x86 integer kernels take).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

_QDQ = ("QuantizeLinear", "DequantizeLinear")


def unsigned_activations(model: onnx.ModelProto) -> int:
    """Switch every int8 activation Q/DQ pair of ``model`` (in place) to uint8 with the zero
    point moved by 128; returns how many Q/DQ nodes changed (0: nothing to do). Weights (a
    constant, or a constant quantized by a Q) stay int8. A model whose int8 activations reach
    its own inputs or outputs is left alone: its interface would change."""
    graph = model.graph
    consts = {t.name: t for t in graph.initializer}
    consts.update(
        (n.output[0], n.attribute[0].t)
        for n in graph.node
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"
    )
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


def prepared(path: str) -> str | bytes:
    """What a CPU session should load for the ONNX file at ``path``: the file itself, or the
    serialized model with its activations switched when it has int8 ones. A model whose
    weights live in external files is left as a path (its bytes could not find them)."""
    model = onnx.load(path, load_external_data=False)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        return path
    if not unsigned_activations(model):
        return path
    return model.SerializeToString()
