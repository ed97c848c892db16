"""ONNX graph edits after tf2onnx (tools/convert_models.py): names, batch, outputs, storage.

Pure functions of an ``onnx.ModelProto``; each says why it changes what it changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class GraphError(Exception):
    """The converted graph is not shaped as expected: re-check the converter's output."""


def prune(graph: Any) -> None:
    """Drop nodes and initializers no graph output depends on."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    inits = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)


def weights_fp16(graph: Any) -> int:
    """Store float32 weights that are exactly float16 values as float16 + a Cast.

    TF.js shipped them as float16 (weightsManifest 'quantization': float16), so nothing is
    lost: the Cast gives back the identical float32 and onnxruntime folds it at load time."""
    from onnx import TensorProto, helper, numpy_helper

    casts, saved = {}, 0
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT:
            continue
        arr = numpy_helper.to_array(init)
        if arr.size < 256 or not np.array_equal(arr.astype(np.float16).astype(np.float32), arr):
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(arr.astype(np.float16), name + "_fp16"))
        casts[name] = helper.make_node("Cast", [name + "_fp16"], [name], to=TensorProto.FLOAT)
        saved += arr.size * 2
    # each Cast right before its first user: the node order (and so the positional names of
    # canonical_names) then does not depend on tf2onnx's initializer order, which varies
    nodes = []
    for node in graph.node:
        nodes.extend(casts.pop(i) for i in node.input if i in casts)
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return saved


def batch_dynamic(graph: Any) -> None:
    """Batch dimension 'N' on every input and output; drop stale intermediate shapes."""
    for vi in [*graph.input, *graph.output]:
        vi.type.tensor_type.shape.dim[0].dim_param = "N"
    del graph.value_info[:]


def canonical_names(graph: Any) -> None:
    """Name every internal tensor and node by its position (t0, c0, Conv_0, ...).

    tf2onnx merges duplicate constants and keeps whichever it meets first, which varies from
    run to run: the graphs compute the same thing under different names. Positional names make
    two conversions byte-identical, so the recorded sha256 can be reproduced."""
    keep = {i.name for i in graph.input} | {o.name for o in graph.output}
    inits = {i.name for i in graph.initializer}
    names: dict[str, str] = {}

    def rename(x: str, kind: str) -> str:
        if not x or x in keep:
            return x
        return names.setdefault(x, f"{kind}{len(names)}")

    for k, node in enumerate(graph.node):
        node.input[:] = [rename(x, "c" if x in inits else "t") for x in node.input]
        node.output[:] = [rename(x, "t") for x in node.output]
        node.name = f"{node.op_type}_{k}"
        for empty in ("domain", "doc_string"):  # set-but-empty vs unset also varied
            if not getattr(node, empty):
                node.ClearField(empty)
    for init in graph.initializer:
        init.name = names.get(init.name, init.name)
    ordered = sorted(graph.initializer, key=lambda i: i.name)
    del graph.initializer[:]
    graph.initializer.extend(ordered)


def finish(model: Any, path: Path) -> None:
    import onnx

    canonical_names(model.graph)
    onnx.checker.check_model(model, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def post_efficientnet(raw: Path, out: Path) -> dict[str, Any]:
    """float32 input, dynamic batch, outputs `probabilities` and `embedding`.

    * input `images` float32 N x 280 x 280 x 3, RGB pixel values 0-255: a QuantizeLinear
      (scale 1, zero point 0, uint8) turns it into the uint8 tensor the TFLite takes; it
      rounds and saturates, so integer pixel values go in unchanged;
    * `probabilities`: the softmax over the 1000 int8 logits in float, before TFLite's final
      8-bit rounding of the output (steps of 1/256), so low scores are not cut to 0;
    * `embedding`: the 1280 global-average-pooled features the classifier reads (after the
      head's ReLU6, dequantized: values in [0, 6]).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(raw))
    g = model.graph
    producers = {o: n for n in g.node for o in n.output}
    (inp,) = g.input
    if inp.name != "images" or inp.type.tensor_type.elem_type != TensorProto.UINT8:
        raise GraphError(f"efficientnet: unexpected input {inp.name}; re-check the converter")
    for node in g.node:
        node.input[:] = ["images_uint8" if i == "images" else i for i in node.input]
    g.initializer.extend(
        [
            numpy_helper.from_array(np.array(1.0, np.float32), "images_scale"),
            numpy_helper.from_array(np.array(0, np.uint8), "images_zero_point"),
        ]
    )
    g.node.insert(
        0,
        helper.make_node(
            "QuantizeLinear",
            ["images", "images_scale", "images_zero_point"],
            ["images_uint8"],
            name="images_to_uint8",
        ),
    )
    inp.type.tensor_type.elem_type = TensorProto.FLOAT

    softmax = next(n for n in g.node if n.op_type == "Softmax").output[0]
    pooled = "efficientnet-lite3/model/head/Squeeze1"
    reshape = producers[pooled + "_prequant"]
    if reshape.op_type != "Reshape" or pooled + "_dequant" not in producers:
        raise GraphError("efficientnet: the pooled features are not where expected")
    shape_init = next(i for i in g.initializer if i.name == reshape.input[1])
    shape_init.CopyFrom(numpy_helper.from_array(np.array([-1, 1280], np.int64), shape_init.name))
    g.node.extend(
        [
            helper.make_node("Identity", [softmax], ["probabilities"], name="probabilities"),
            helper.make_node("Identity", [pooled + "_dequant"], ["embedding"], name="embedding"),
        ]
    )
    del g.output[:]
    g.output.extend(
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 1000]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 1280]),
        ]
    )
    batch_dynamic(g)
    prune(g)
    finish(model, out)
    return {}


NANODET_SIZE = 416


def nanodet_name(hw: int, channels: int) -> str:
    stride = NANODET_SIZE // round(hw**0.5)
    return f"{'scores' if channels == 80 else 'boxes'}_s{stride}"


def post_nanodet(raw: Path, out: Path, signature: dict[str, Any]) -> dict[str, Any]:
    """Input `images`, outputs named by kind and stride, dynamic batch, float16 storage.

    The TF.js graph computes its output reshapes' target shape [1, C, -1] from constants
    (SparseToDense); they become [0, C, -1] (0: keep the batch dimension)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(raw))
    g = model.graph
    producers = {o: n for n in g.node for o in n.output}
    (inp,) = g.input
    for node in g.node:
        node.input[:] = ["images" if i == inp.name else i for i in node.input]
    inp.name = "images"
    shapes = {
        k.split(":")[0]: [int(d["size"]) for d in v["tensorShape"]["dim"]]
        for k, v in signature["outputs"].items()
    }
    outs = []
    for o in g.output:
        _, hw, ch = shapes[o.name.split(":")[0]]
        new = nanodet_name(hw, ch)
        transpose = producers[o.name]
        reshape = producers[transpose.input[0]]
        if transpose.op_type != "Transpose" or reshape.op_type != "Reshape":
            raise GraphError(f"nanodet: output {o.name} is not Reshape+Transpose")
        const = f"{new}_shape"
        g.initializer.append(numpy_helper.from_array(np.array([0, ch, -1], np.int64), const))
        reshape.input[1] = const
        transpose.output[0] = new
        outs.append((new, hw, ch))
    order = [f"{k}_s{s}" for k in ("scores", "boxes") for s in (8, 16, 32)]
    outs.sort(key=lambda t: order.index(t[0]))
    del g.output[:]
    g.output.extend(
        helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", hw, ch]) for n, hw, ch in outs
    )
    inp.type.tensor_type.shape.dim[0].dim_param = "N"
    batch_dynamic(g)
    prune(g)
    saved = weights_fp16(g)
    finish(model, out)
    return {"float16_weights_bytes_saved": saved}


def fill_tfjs_attrs(spec: dict[str, Any]) -> int:
    """Fill attributes a TF.js graph leaves out from TensorFlow's op registry (in place).

    The TF.js converter drops attributes TF.js does not read; tf2onnx rebuilds a TensorFlow
    graph and refuses a node without them (BlazeFace: "NodeDef missing attr 'TArgs' from
    Op<name=_FusedConv2D ...>"). A missing attribute with a default gets the registry's
    default; a missing type list of a variadic input (``TArgs``) gets the node's ``T`` once
    per input of that argument. Returns how many were filled."""
    from google.protobuf import json_format
    from tensorflow.python.framework import op_def_registry

    filled = 0
    for node in spec["modelTopology"]["node"]:
        op = op_def_registry.get(node["op"])
        if op is None:
            continue
        attrs = node.setdefault("attr", {})
        inputs = [i for i in node.get("input", []) if not i.startswith("^")]
        for a in op.attr:
            if a.name in attrs:
                continue
            if a.HasField("default_value"):
                attrs[a.name] = json_format.MessageToDict(a.default_value)
            elif a.type == "list(type)" and "T" in attrs:
                fixed = sum(
                    int(attrs.get(arg.number_attr, {}).get("i", 0)) if arg.number_attr else 1
                    for arg in op.input_arg
                    if arg.type_list_attr != a.name
                )
                attrs[a.name] = {"list": {"type": [attrs["T"]["type"]] * (len(inputs) - fixed)}}
            else:
                raise GraphError(f"{node['name']} ({node['op']}): no value for '{a.name}'")
            filled += 1
    return filled


BLAZEFACE_SIZE = 256


def post_blazeface(raw: Path, out: Path, signature: dict[str, Any]) -> dict[str, Any]:
    """Input `images`, the four TF.js outputs joined into `logits` (N, 896, 1) and
    `regressors` (N, 896, 16) in anchor order (16x16 grid x 2 anchors, then 8x8 x 6), dynamic
    batch (the output reshapes' leading 1 becomes -1)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(raw))
    g = model.graph
    producers = {o: n for n in g.node for o in n.output}
    inits = {i.name: i for i in g.initializer}
    (inp,) = g.input
    for node in g.node:
        node.input[:] = ["images" if i == inp.name else i for i in node.input]
    inp.name = "images"
    shapes = {
        k.split(":")[0]: [int(d["size"]) for d in v["tensorShape"]["dim"]]
        for k, v in signature["outputs"].items()
    }
    parts: dict[str, list[tuple[int, str]]] = {"logits": [], "regressors": []}
    for o in g.output:
        _, anchors, ch = shapes[o.name.split(":")[0]]
        node = producers[o.name]
        while node.op_type != "Reshape":  # tf2onnx may leave an Identity
            node = producers[node.input[0]]
        init = inits[node.input[1]]
        init.CopyFrom(numpy_helper.from_array(np.array([-1, anchors, ch], np.int64), init.name))
        parts["logits" if ch == 1 else "regressors"].append((-anchors, o.name))
    for name, items in parts.items():
        g.node.append(helper.make_node("Concat", [n for _, n in sorted(items)], [name], axis=1))
    del g.output[:]
    g.output.extend([
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 896, 1]),
        helper.make_tensor_value_info("regressors", TensorProto.FLOAT, ["N", 896, 16]),
    ])  # fmt: skip
    inp.type.tensor_type.shape.dim[0].dim_param = "N"
    batch_dynamic(g)
    prune(g)
    saved = weights_fp16(g)
    finish(model, out)
    return {"float16_weights_bytes_saved": saved}


# What each converted file takes and gives: written into PROVENANCE.json as its contract.
INTERFACE: dict[str, dict[str, Any]] = {
    "efficientnet-lite3": {
        "output_order": ["probabilities", "embedding"],
        "input": {
            "name": "images",
            "shape": ["N", 280, 280, 3],
            "dtype": "float32",
            "layout": "NHWC",
            "colour": "RGB",
            "values": "raw pixel values 0-255, no normalisation: the graph rounds and saturates "
            "them to the uint8 the TFLite takes (its input quantization scale 0.012667, zero "
            "point 130 is applied inside the graph)",
            "manifest": {
                "size": [280, 280],
                "layout": "NHWC",
                "colour": "RGB",
                "scale": 1.0,
                "mean": [0.0, 0.0, 0.0],
                "std": [1.0, 1.0, 1.0],
            },
            "crop": "TF's EfficientNet evaluation crops the centre 280/312 of the shorter side "
            "then resizes; `resize: 312` (square, then centre crop 280) is the scorer's nearest "
            "option; the reference outputs squash the whole image to 280x280",
        },
        "outputs": {
            "probabilities": {
                "shape": ["N", 1000],
                "dtype": "float32",
                "meaning": "softmax over the 1000 ImageNet-1k classes in the standard "
                "ImageNet-1k index order (0 tench ... 413 assault rifle, 763 revolver, 764 "
                "rifle, 845 syringe, 999 toilet tissue); NO background class (TF Hub's "
                "labels_without_background.txt, written to efficientnet-lite3.labels.txt). "
                "Computed in float from the int8 logits, before TFLite's final 8-bit "
                "rounding of the output (TFLite reports multiples of 1/256)",
            },
            "embedding": {
                "shape": ["N", 1280],
                "dtype": "float32",
                "meaning": "the global-average-pooled head features the classifier reads "
                "(after ReLU6, dequantized: values in [0, 6], steps of 0.0235); a shared "
                "embedding for linear probes",
            },
        },
    },
    "nanodet": {
        "output_order": [f"{k}_s{s}" for k in ("scores", "boxes") for s in (8, 16, 32)],
        "input": {
            "name": "images",
            "shape": ["N", 3, 416, 416],
            "dtype": "float32",
            "layout": "NCHW",
            "colour": "RGB",
            "values": "pixel / 255 (0-1), the whole frame squashed to 416x416 (bilinear, no "
            "letterbox): exactly what @vladmandic/human feeds it (src/object/nanodet.ts)",
            "manifest": {
                "size": [416, 416],
                "layout": "NCHW",
                "colour": "RGB",
                "scale": 1 / 255,
                "mean": [0.0, 0.0, 0.0],
                "std": [1.0, 1.0, 1.0],
            },
            "note": "upstream NanoDet trains on BGR with mean [103.53, 116.28, 123.675] and std "
            "[57.375, 57.12, 58.395]; on the 5 sample images that normalisation scores the "
            "dog (0.61 vs 0.29), bicycle and truck higher but calls the horses 'cow': measure "
            "before choosing. The reference outputs use human's RGB/255",
        },
        "outputs": {
            f"{kind}_s{s}": {
                "shape": ["N", (416 // s) ** 2, 80 if kind == "scores" else 44],
                "dtype": "float32",
                "meaning": (
                    f"stride {s} ({416 // s}x{416 // s} grid): per-class scores, sigmoid "
                    "already applied (GFL: class x box-quality), classes in COCO-80 order "
                    "(nanodet.labels.txt)"
                    if kind == "scores"
                    else f"stride {s} ({416 // s}x{416 // s} grid): box regression logits, 4 "
                    "sides (left, top, right, bottom) x 11 bins (reg_max 10), side-major"
                ),
            }
            for kind in ("scores", "boxes")
            for s in (8, 16, 32)
        },
        "decoding": "anchor a of a level with stride s and grid n = 416/s is row a // n, "
        "column a % n, centre ((a % n) + 0.5) * s, ((a // n) + 0.5) * s in input pixels. "
        "Distance of each side = s * sum_i i * softmax(logits of that side)_i, i = 0..10; box = "
        "(cx - left, cy - top, cx + right, cy + bottom) in 416-px input space, times "
        "frame_w/416, frame_h/416 for the frame. Then per-class NMS (NanoDet: score 0.05, IoU "
        "0.6). @vladmandic/human decodes differently (argmax bin, boxes scaled by 2.5/stride "
        "factor, min score 0.2, IoU 0.4, class index 61 'toilet' dropped); the expectation "
        "decoding above is NanoDet's own and gives tight boxes on the samples",
    },
    "blazeface": {
        "output_order": ["logits", "regressors"],
        "input": {
            "name": "images",
            "shape": ["N", 256, 256, 3],
            "dtype": "float32",
            "layout": "NHWC",
            "colour": "RGB",
            "values": "pixel / 127 - 1, the frame squashed (or padded square) to 256x256, as "
            "@vladmandic/human feeds it (src/face/blazeface.ts; MediaPipe uses / 127.5 - 1)",
            "manifest": {
                "size": [256, 256],
                "layout": "NHWC",
                "colour": "RGB",
                "scale": 1 / 127,
                "mean": [1.0, 1.0, 1.0],
                "std": [1.0, 1.0, 1.0],
            },
        },
        "outputs": {
            "logits": {
                "shape": ["N", 896, 1],
                "dtype": "float32",
                "meaning": "face score logit per anchor (sigmoid gives the score)",
            },
            "regressors": {
                "shape": ["N", 896, 16],
                "dtype": "float32",
                "meaning": "per anchor, in 256-px input pixels: centre offset dx, dy, box "
                "width, height, then 6 keypoints (x, y) as offsets from the anchor (right eye, "
                "left eye, nose, mouth, right ear, left ear)",
            },
        },
        "decoding": "anchors: 512 on a 16x16 grid (stride 16, 2 per cell) then 384 on an 8x8 "
        "grid (stride 32, 6 per cell), row-major, centre ((col + 0.5) * stride, (row + 0.5) * "
        "stride). Box centre = anchor + (dx, dy); box = centre -/+ (w, h) / 2; keypoint k = "
        "anchor + (kx, ky); scale by frame_w/256, frame_h/256. Then NMS (human: min score "
        "0.2, IoU 0.1)",
    },
}
