# ruff: noqa: E402
"""The scorer on a GPU, in a few minutes of GPU time: per-model ms and frames/s at batch 1, 16,
64 and 256 (CUDA with IO binding; an int8 QDQ model also dequantized; FP16 where the scores
allow it; TensorRT when onnxruntime-gpu can load it), what a batch size never seen before costs
under each cuDNN search mode, the model set run by several threads side by side, the CPU's ms a
frame of decode and preprocessing, the scorer's own path (JPEG decode + preprocessing + models)
at those batches, and p95 capture -> decision for 100, 500 and 2,000 simulated streams: frames
fed at 1 fps a stream into the real scorer path in-process (micro-batcher -> Scorer.score_frames
-> bank match -> framewatch.policy.evaluate, the policy's pure decide function), with the
scorer's batch shapes (scoring.batch_shapes) warmed first.

    python benchmarks/gpu.py --budget-s 300 --out gpu-bench.json     (or: make gpu-bench)

Without a working CUDA provider it prints "CUDA not available: not measured", then runs the same
code on the CPU at batch 1 and 16 with few iterations and a 2-stream simulation (a dry run that
proves the script works; its figures are not GPU figures). Every phase checks --budget-s first
and is skipped (and says so) when it would not fit. The last line printed is one JSON object,
also written to --out.
"""

from __future__ import annotations

import sys
from pathlib import Path

# run as a script, this file's folder comes first on sys.path and would shadow the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from devkit.testdata import video
from framewatch import images, policy, records, taxonomy
from framewatch.settings import load_settings
from scoring import onnxprep, registry
from scoring.banks import Bank, BankIndex
from scoring.batcher import MicroBatcher
from scoring.model import (
    CUDA,
    Model,
    channel_normalisation,
    decode_image,
    load_models,
    session_options,
    shape_for,
)
from scoring.scorer import Scorer

GOAL_FPS = 2000
GOAL = f"{GOAL_FPS:,} frames/s of the default model set on one H100/H200-class GPU"
ANCHORS = (
    "Triton + ONNX Runtime + TensorRT: ResNet-50 about 2,860 images/s at batch 32 on one A100; "
    "DeepStream-class pipelines: about 50 1080p30 streams a GPU with a heavy detector"
)
NOT_MEASURED = "CUDA not available: not measured"
TRT = "TensorrtExecutionProvider"
CPU = "CPUExecutionProvider"


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)  # progress on stderr, the JSON line on stdout


@dataclass
class Budget:
    """The whole run's time bound: a phase runs only when its estimate fits what is left."""

    seconds: float
    start: float = field(default_factory=time.monotonic)
    skipped: list[str] = field(default_factory=list)

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.start)

    def allows(self, what: str, estimate_s: float) -> bool:
        if self.left() >= estimate_s:
            return True
        self.skipped.append(f"{what} (needs ~{estimate_s:.0f} s, {self.left():.0f} s left)")
        say(f"  skipped, over the budget: {self.skipped[-1]}")
        return False


# ---------------------------------------------------------------- CUDA probe
def probe_cuda(model_names: list[str]) -> tuple[bool, str]:
    """Whether a session really runs on CUDA (the provider list alone says nothing: without the
    CUDA libraries onnxruntime-gpu falls back to the CPU)."""
    if CUDA not in ort.get_available_providers():
        return False, f"this onnxruntime build ({ort.__version__}) has no CUDA provider"
    if hasattr(ort, "preload_dlls"):  # the nvidia-* pip packages' libraries, when installed
        try:
            ort.preload_dlls()
        except Exception as exc:
            say(f"  preload_dlls: {exc}")
    try:
        (m,) = load_models(model_names[:1], [], [CUDA, CPU])
    except Exception as exc:
        return False, f"a CUDA session could not be created: {exc}"
    if m.provider != CUDA:
        return False, (
            f"the CUDA provider did not load (session on {m.provider}); onnxruntime-gpu "
            f"{ort.__version__} needs the CUDA and cuDNN libraries it was built for "
            "(pip install 'onnxruntime-gpu[cuda,cudnn]' or the system's CUDA toolkit)"
        )
    return True, f"session on {m.provider}"


# ---------------------------------------------------------------- inputs
def sample_frames(n: int) -> list[records.Frame]:
    """n sampled frames of a bundled video as ingest sends them: 384-px JPEG thumbnails with
    their PDQ hashes (ingest's own code), one a second of video, cycled."""
    import av

    from ingest import framedata  # ingest's own thumbnail and PDQ code

    out: list[records.Frame] = []
    with av.open(str(video("chair-orig-22-sd-bar.mp4"))) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % 30:
                continue
            h, q = framedata.frame_pdq(f)
            out.append(records.Frame(
                frame_id=records.new_id(), stream_id="s", account_id="a", seq=len(out), pts=0.0,
                captured_at=0.0, sample_reason="interval", width=f.width, height=f.height,
                pdq=h, pdq_quality=q, jpeg=framedata.frame_thumbnail_jpeg(f, 384, 85),
            ))  # fmt: skip
    return [out[i % len(out)] for i in range(n)]


def model_inputs(m: Model, frames: list[records.Frame], batch: int, max_pixels: int) -> np.ndarray:
    """A batch of real preprocessed tensors for one model (the frames cycled)."""
    one = [m.preprocess(decode_image(f.jpeg, max_pixels))[0] for f in frames[: min(16, batch)]]
    return np.stack([one[i % len(one)] for i in range(batch)])


# ---------------------------------------------------------------- per-model timing
def device_binding(
    sess: ort.InferenceSession, input_name: str, x: np.ndarray, device: str
) -> ort.IOBinding:
    """An IO binding of ``sess`` with ``x`` copied to the device once and every output left
    there: a run then times the model alone, no host copies."""
    io = sess.io_binding()
    io.bind_ortvalue_input(input_name, ort.OrtValue.ortvalue_from_numpy(x, device, 0))
    for o in sess.get_outputs():
        io.bind_output(o.name, device)
    return io


def time_session(
    sess: ort.InferenceSession, x: np.ndarray, iters: int, device: str, warmup: int = 2
) -> float:
    """Median ms of one batch with IO binding: input copied to the device once, outputs left
    there, so the figure is the model alone (no host copies)."""
    io = device_binding(sess, sess.get_inputs()[0].name, x, device)
    for _ in range(warmup):  # cuDNN algorithm search, TensorRT engine build
        sess.run_with_iobinding(io)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        sess.run_with_iobinding(io)  # synchronises the device at the end
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


QDQ = {"QuantizeLinear", "DequantizeLinear"}
# ops that only move elements: a Q -> layout op -> DQ chain is the layout op on the float tensor
LAYOUT = {"Transpose", "Reshape", "Identity", "Flatten", "Squeeze", "Unsqueeze"}


def is_qdq(model: onnx.ModelProto) -> bool:
    return any(n.op_type in QDQ for n in model.graph.node)


def dequantized(model: onnx.ModelProto) -> onnx.ModelProto:
    """A QDQ-quantized graph as plain float32: each weight's DequantizeLinear folded into a
    float initializer, each activation's QuantizeLinear -> DequantizeLinear pair (quantization
    noise, on the CUDA provider hundreds of extra kernels) dropped. The CUDA provider has no
    INT8 kernels for them, so on a GPU the Q/DQ nodes are pure cost; the scores it changes are
    checked against the quantized model's (score_drift)."""
    from onnx import numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    q_of = {n.output[0]: n for n in g.node if n.op_type == "QuantizeLinear"}
    rename: dict[str, str] = {}
    folded, keep = [], []

    def param(name: str) -> float:
        """A per-tensor scale or zero point (activations are quantized per tensor)."""
        return float(numpy_helper.to_array(inits[name])) if name else 0.0

    for n in g.node:
        if n.op_type == "DequantizeLinear":
            x = n.input[0]
            if x in inits:  # a weight: (w - zero point) * scale, per axis when the scale is
                w = numpy_helper.to_array(inits[x]).astype(np.float32)
                sc = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
                zp = (numpy_helper.to_array(inits[n.input[2]]).astype(np.float32)
                      if len(n.input) > 2 and n.input[2] else np.zeros_like(sc))  # fmt: skip
                if sc.ndim == 1 and sc.size > 1:
                    axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
                    shape = [1] * w.ndim
                    shape[axis] = sc.size
                    sc, zp = sc.reshape(shape), zp.reshape(shape)
                folded.append(
                    numpy_helper.from_array(((w - zp) * sc).astype(np.float32), n.output[0])
                )
                continue
            src = producer.get(x)
            via = src if src is not None and src.op_type in LAYOUT else None
            q = q_of.get(via.input[0] if via is not None else x)
            if q is not None:
                # Q then DQ: x / s_q + zp_q, then (. - zp_d) * s_d. With the same scale and zero
                # point that is quantization noise (dropped); with others, an affine rescale
                # (the input normalisation of some exports), kept as Mul and Add
                s_q, zp_q = param(q.input[1]), param(q.input[2] if len(q.input) > 2 else "")
                s_d, zp_d = param(n.input[1]), param(n.input[2] if len(n.input) > 2 else "")
                y = q.input[0]
                if (s_q, zp_q) != (s_d, zp_d):
                    a, b = f"{n.output[0]}/a", f"{n.output[0]}/b"
                    folded += [numpy_helper.from_array(np.float32(s_d / s_q), a),
                               numpy_helper.from_array(np.float32((zp_q - zp_d) * s_d), b)]  # fmt: skip
                    keep += [onnx.helper.make_node("Mul", [y, a], [f"{y}/{a}"]),
                             onnx.helper.make_node("Add", [f"{y}/{a}", b], [f"{y}/{b}"])]  # fmt: skip
                    y = f"{y}/{b}"
                if via is not None:  # the layout op moves the floats now
                    via.input[0] = y
                    rename[n.output[0]] = x
                else:
                    rename[n.output[0]] = y
                continue
        keep.append(n)
    for n in keep:
        for k, name in enumerate(n.input):
            while name in rename:
                name = rename[name]
            n.input[k] = name
    read = {i for n in keep for i in n.input} | {o.name for o in g.output}
    keep = [n for n in keep if n.op_type != "QuantizeLinear" or n.output[0] in read]
    if any(n.op_type in QDQ for n in keep):
        raise ValueError("a Q/DQ pattern this rewrite does not know is left in the graph")
    del g.node[:]
    g.node.extend(topo_sorted(keep, {i.name for i in g.input} | {i.name for i in g.initializer}
                              | {i.name for i in folded}))  # fmt: skip
    read = {i for n in keep for i in n.input} | {o.name for o in g.output}
    alive = [i for i in [*g.initializer, *folded] if i.name in read]
    del g.initializer[:]
    g.initializer.extend(alive)
    return model


def topo_sorted(nodes: list[onnx.NodeProto], given: set[str]) -> list[onnx.NodeProto]:
    """Nodes in an order where each one's inputs come before it (the rewrite adds nodes)."""
    have, out, todo = set(given) | {""}, [], list(nodes)
    while todo:
        ready = [n for n in todo if all(i in have for i in n.input)]
        if not ready:
            raise ValueError("the rewritten graph has a cycle or a missing input")
        for n in ready:
            have.update(n.output)
        out += ready
        todo = [n for n in todo if n not in ready]
    return out


def variant_file(m: Model, tmp: Path, fp16: bool) -> Path:
    """The model dequantized (QDQ models) and/or converted to FP16 (inputs and outputs stay
    float32, with onnxconverter-common; a QDQ model is dequantized first, since FP16 Q/DQ
    nodes are not valid ONNX)."""
    out = tmp / f"{m.manifest.name}-{'fp16' if fp16 else 'dequantized'}.onnx"
    if not out.exists():
        model = onnx.load(str(registry.onnx_path(m.manifest)))
        if is_qdq(model):
            model = dequantized(model)
        if fp16:
            from onnxconverter_common import float16

            with warnings.catch_warnings():  # "truncated to 1e-07" for every tiny weight
                warnings.simplefilter("ignore", UserWarning)
                model = float16.convert_float_to_float16(model, keep_io_types=True)
        onnx.save(model, str(out))
    return out


U8_INPUT = "image_uint8"  # the input of a graph that normalises on the device


def with_uint8_input(m: Model) -> bytes:
    """The scorer's graph of ``m`` taking the resized image as uint8 (N, H, W, 3) in BGR, with
    the manifest's normalisation (channel order, multiply-add, CHW transpose) as its first
    nodes: a quarter of the bytes copied to the device, and no float pass on the CPU. The
    next step the night's GPU run pointed at (docs/performance.md); on one CPU thread the
    same nodes cost more than numpy's pass (not adopted there)."""
    from onnx import TensorProto, helper, numpy_helper

    spec = m.manifest.image_input
    w, h = spec.size
    prepared = onnxprep.prepared(str(registry.onnx_path(m.manifest)))
    model = onnx.load_from_string(prepared) if isinstance(prepared, bytes) else onnx.load(prepared)
    g = model.graph
    (old,) = [i for i in g.input if i.name == m.input_name]
    gain, offset = channel_normalisation(spec)
    g.initializer.extend([numpy_helper.from_array(gain, "u8_gain"),
                          numpy_helper.from_array(offset, "u8_offset")])  # fmt: skip
    nodes, cur = (
        [helper.make_node("Cast", [U8_INPUT], ["u8_float"], to=TensorProto.FLOAT)],
        "u8_float",
    )
    if spec.colour == "RGB":
        g.initializer.append(numpy_helper.from_array(np.array([2, 1, 0], np.int64), "u8_rgb"))
        nodes.append(helper.make_node("Gather", [cur, "u8_rgb"], ["u8_ordered"], axis=3))
        cur = "u8_ordered"
    nchw = spec.layout == "NCHW"
    nodes.append(helper.make_node("Mul", [cur, "u8_gain"], ["u8_scaled"]))
    nodes.append(helper.make_node("Add", ["u8_scaled", "u8_offset"],
                                  ["u8_hwc" if nchw else m.input_name]))  # fmt: skip
    if nchw:
        nodes.append(helper.make_node("Transpose", ["u8_hwc"], [m.input_name], perm=[0, 3, 1, 2]))
    batch = old.type.tensor_type.shape.dim[0]
    g.input.remove(old)
    g.input.insert(0, helper.make_tensor_value_info(
        U8_INPUT, TensorProto.UINT8, [batch.dim_param or batch.dim_value or "N", h, w, 3]))  # fmt: skip
    for n in reversed(nodes):
        g.node.insert(0, n)
    return model.SerializeToString()


def uint8_inputs(m: Model, x: np.ndarray) -> np.ndarray:
    """The uint8 BGR images (N, H, W, 3) whose normalisation is the float batch ``x`` (the
    same resized pixels: the manifest's multiply-add inverted and rounded)."""
    spec = m.manifest.image_input
    gain, offset = channel_normalisation(spec)
    hwc = x.transpose(0, 2, 3, 1) if spec.layout == "NCHW" else x
    pixels = np.rint((hwc - offset) / gain)
    if spec.colour == "RGB":
        pixels = pixels[..., ::-1]
    return np.ascontiguousarray(np.clip(pixels, 0, 255).astype(np.uint8))


def trt_providers(m: Model, tmp: Path, max_batch: int) -> list[Any]:
    """TensorRT with FP16 and one optimisation profile from batch 1 to max_batch (engines are
    cached in tmp, so a second batch size does not rebuild)."""
    inp = m.session.get_inputs()[0]
    dims = "x".join(str(d) for d in inp.shape[1:])
    opt = min(64, max_batch)
    return [
        (TRT, {
            "trt_fp16_enable": True, "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(tmp / "trt"),
            "trt_profile_min_shapes": f"{inp.name}:1x{dims}",
            "trt_profile_opt_shapes": f"{inp.name}:{opt}x{dims}",
            "trt_profile_max_shapes": f"{inp.name}:{max_batch}x{dims}",
        }),
        CUDA, CPU,
    ]  # fmt: skip


def variant_sessions(
    m: Model, on_gpu: bool, tmp: Path, max_batch: int, want_trt: bool, want_fp16: bool
) -> tuple[dict[str, ort.InferenceSession], dict[str, str]]:
    """fp32 (the scorer's own session), dequantized (QDQ models), fp16 and TensorRT sessions
    of one model; what could not be made is reported, not raised."""
    sessions: dict[str, ort.InferenceSession] = {"fp32": m.session}
    notes: dict[str, str] = {}
    providers: list[Any] = [CUDA, CPU] if on_gpu else [CPU]
    qdq = is_qdq(onnx.load(str(registry.onnx_path(m.manifest))))
    for name in ["dequantized"] * qdq + ["fp16"] * want_fp16:
        fp16 = name == "fp16"
        try:
            path = variant_file(m, tmp, fp16)
            sessions[name] = ort.InferenceSession(str(path), session_options(), providers=providers)
        except Exception as exc:
            notes[name] = f"not available: {str(exc).splitlines()[0][:200]}"
    if want_trt and on_gpu:
        try:
            sess = ort.InferenceSession(
                str(registry.onnx_path(m.manifest)), session_options(),
                providers=trt_providers(m, tmp, max_batch),
            )  # fmt: skip
            if sess.get_providers()[0] == TRT:
                sessions["trt-fp16"] = sess
            else:
                notes["trt-fp16"] = (
                    f"not available: session fell back to {sess.get_providers()[0]} (TensorRT "
                    "libraries missing? pip install tensorrt-cu12 / the tensorrt package the "
                    "onnxruntime-gpu build names)"
                )
        except Exception as exc:
            notes["trt-fp16"] = f"not available: {str(exc).splitlines()[0][:200]}"
    return sessions, notes


def max_score_diff(m: Model, a: np.ndarray, b: np.ndarray) -> float:
    """Largest difference between two outputs' decoded label scores (what policies read)."""
    scale = [(1.0, 1.0)] * a.shape[0]
    worst = 0.0
    for ra, rb in zip(m.decode(a, scale), m.decode(b, scale), strict=True):
        for lab, v in ra.raw.items():
            worst = max(worst, abs(v - rb.raw.get(lab, 0.0)))
    return worst


def bench_models(
    models: list[Model], frames: list[records.Frame], args: argparse.Namespace, on_gpu: bool,
    budget: Budget, tmp: Path,
) -> dict[str, Any]:  # fmt: skip
    """Per model and variant: ms a batch at each batch size, and FP16's score drift."""
    device = "cuda" if on_gpu else "cpu"
    max_pixels = load_settings().scoring.max_image_pixels
    out: dict[str, Any] = {}
    for m in models:
        say(f"{m.ref}: building variants ...")
        sessions, notes = variant_sessions(
            m, on_gpu, tmp, max(args.batches), not args.no_trt, not args.no_fp16
        )
        row: dict[str, Any] = {"variants": {}, "notes": notes}
        check = model_inputs(m, frames, 16, max_pixels)
        ref = m.infer(check)
        for name, sess in sessions.items():
            if name != "fp32":
                try:
                    got = np.asarray(sess.run(None, {m.input_name: check})[0], np.float32)
                except Exception as exc:
                    notes[name] = f"failed to run: {str(exc).splitlines()[0][:200]}"
                    continue
                drift = max_score_diff(m, ref, got)
                allowed = drift <= args.fp16_tolerance
                row.setdefault("score_drift", {})[name] = round(drift, 5)
                if not allowed:
                    notes[name] = (
                        f"scores move by {drift:.4f} (> {args.fp16_tolerance}): not allowed"
                    )
            ms: dict[str, float] = {}
            # the dry run times the other variants at its first batch only (CPU FP16 is slow)
            sizes = args.batches if on_gpu or name == "fp32" else args.batches[:1]
            for b in sizes:
                if not budget.allows(f"{m.ref} {name} batch {b}", args.phase_estimate_s):
                    break
                x = model_inputs(m, frames, b, max_pixels)
                ms[str(b)] = round(time_session(sess, x, args.iters, device, args.warmup), 3)
                say(f"  {name:9s} batch {b:4d}: {ms[str(b)]:9.2f} ms  "
                    f"({ms[str(b)] / b:.3f} ms/frame, {1000 * b / ms[str(b)]:,.0f} frames/s)")  # fmt: skip
            row["variants"][name] = {"ms_per_batch": ms}
        out[m.ref] = row
    return out


def set_fps(per_model: dict[str, Any], batches: list[int]) -> dict[str, dict[str, float]]:
    """Frames/s of the whole model set (models run one after another on each batch), fp32 and
    with each model's fastest allowed variant."""
    out: dict[str, dict[str, float]] = {"fp32": {}, "best_allowed": {}}
    for b in (str(x) for x in batches):
        fp32 = [
            r["variants"].get("fp32", {}).get("ms_per_batch", {}).get(b) for r in per_model.values()
        ]
        best = []
        for r in per_model.values():
            ok = [v["ms_per_batch"][b] for n, v in r["variants"].items()
                  if b in v["ms_per_batch"] and (n == "fp32" or n not in r["notes"])]  # fmt: skip
            best.append(min(ok) if ok else None)
        if fp32 and all(v is not None for v in fp32):
            out["fp32"][b] = round(1000 * int(b) / sum(fp32), 1)  # type: ignore[arg-type]
        if best and all(v is not None for v in best):
            out["best_allowed"][b] = round(1000 * int(b) / sum(best), 1)  # type: ignore[arg-type]
    return out


# ---------------------------------------------------------------- batch shapes and streams
SEARCHES = ("EXHAUSTIVE", "HEURISTIC")  # ORT's cudnn_conv_algo_search (EXHAUSTIVE: its default)


def fresh_session(m: Model, providers: list[Any]) -> ort.InferenceSession:
    """A new session of the scorer's own graph (scoring/onnxprep.py), with other providers."""
    return ort.InferenceSession(
        onnxprep.prepared(str(registry.onnx_path(m.manifest))), session_options(),
        providers=providers,
    )  # fmt: skip


def probe_shapes(
    models: list[Model], frames: list[records.Frame], on_gpu: bool, budget: Budget,
    args: argparse.Namespace,
) -> dict[str, Any]:  # fmt: skip
    """What a batch size the session never saw costs: per model and cuDNN search mode, the
    first run at a few new sizes against the same size warmed, and the warmed ms at 16 and
    256 (does the cheaper search pick slower kernels?)."""
    max_pixels = load_settings().scoring.max_image_pixels
    modes: list[tuple[str, list[Any]]] = (
        [(k, [(CUDA, {"cudnn_conv_algo_search": k}), CPU]) for k in SEARCHES] if on_gpu
        else [("cpu", [CPU])]
    )  # fmt: skip
    new_sizes = [3, 5, 12] if on_gpu else [3]
    steady_sizes = [16, 256] if on_gpu else [4]
    out: dict[str, Any] = {}
    for m in models:
        for mode, providers in modes:
            if not budget.allows(f"shape probe {m.ref} {mode}", args.phase_estimate_s):
                return out
            t0 = time.perf_counter()
            sess = fresh_session(m, providers)
            row: dict[str, Any] = {"session_s": round(time.perf_counter() - t0, 2)}
            first, again = {}, {}
            for b in new_sizes:
                x = model_inputs(m, frames, b, max_pixels)
                t0 = time.perf_counter()
                sess.run(None, {m.input_name: x})
                first[str(b)] = round((time.perf_counter() - t0) * 1000, 1)
                t0 = time.perf_counter()
                sess.run(None, {m.input_name: x})
                again[str(b)] = round((time.perf_counter() - t0) * 1000, 1)
            row["first_run_ms"], row["second_run_ms"] = first, again
            device = "cuda" if on_gpu else "cpu"
            row["warmed_ms"] = {
                str(b): round(time_session(sess, model_inputs(m, frames, b, max_pixels),
                                           5 if on_gpu else 1, device, 2), 2)
                for b in steady_sizes
            }  # fmt: skip
            out.setdefault(m.ref, {})[mode] = row
            say(f"  {m.ref:20s} {mode:10s} first run at a new size {first} ms, again {again}; "
                f"warmed {row['warmed_ms']} ms")  # fmt: skip
            del sess
    return out


Runner = Callable[[], None]  # one round of the model set, from one thread


def bench_concurrent(
    models: list[Model], frames: list[records.Frame], on_gpu: bool, budget: Budget,
    args: argparse.Namespace,
) -> dict[str, Any]:  # fmt: skip
    """Models only, side by side: K threads each running the whole set on its own batch.
    Four ways: host arrays in and out (as Model.run does) sharing the scorer's sessions;
    tensors already on the device (IO binding, one binding a thread and model, outputs left
    there), sharing them too; host arrays of uint8 images into graphs that normalise them
    (:func:`with_uint8_input`); host arrays with a session set of each thread's own. Frames/s
    over every thread. A way that fails (out of device memory at a large batch) is reported
    with its error and the others still run."""
    max_pixels = load_settings().scoring.max_image_pixels
    b = args.concurrent_batch if on_gpu else 4
    rounds = 8 if on_gpu else 1
    device = "cuda" if on_gpu else "cpu"
    xs = [model_inputs(m, frames, b, max_pixels) for m in models]

    def host(sessions: list[ort.InferenceSession]) -> Runner:
        def run() -> None:
            for m, sess, x in zip(models, sessions, xs, strict=True):
                sess.run(None, {m.input_name: x})

        return run

    def bound(sessions: list[ort.InferenceSession]) -> Runner:
        ios = [(sess, device_binding(sess, m.input_name, x, device))
               for m, sess, x in zip(models, sessions, xs, strict=True)]  # fmt: skip

        def run() -> None:
            for sess, io in ios:
                sess.run_with_iobinding(io)  # synchronises the device at the end

        return run

    def timed(runners: list[Runner]) -> float:
        def rounds_of(run: Runner) -> None:
            for _ in range(rounds):
                run()

        with ThreadPoolExecutor(len(runners)) as pool:
            list(pool.map(rounds_of, runners))  # warm
            t0 = time.perf_counter()
            list(pool.map(rounds_of, runners))
            return round(len(runners) * rounds * b / (time.perf_counter() - t0), 1)

    shared = [m.session for m in models]
    out: dict[str, Any] = {"batch": b, "shared_sessions": {}, "device_tensors": {},
                           "uint8_inputs": {}, "own_sessions": {}, "failed": {}}  # fmt: skip

    def measure(way: str, k: int, make: Callable[[], list[Runner]], what: str) -> None:
        if not budget.allows(f"models side by side, {way}, {k} threads", args.phase_estimate_s):
            return
        try:
            out[way][str(k)] = timed(make())
        except Exception as exc:  # a GPU out of memory is a result here, not the end of the run
            out["failed"][f"{way} {k}"] = str(exc).splitlines()[0][:300]
            say(f"  batch {b}, {k:2d} threads, {what}: failed ({out['failed'][f'{way} {k}']})")
            return
        say(f"  batch {b}, {k:2d} threads, {what}: {out[way][str(k)]:,} frames/s")

    for k in args.concurrent_threads if on_gpu else [1]:
        measure("shared_sessions", k, lambda k=k: [host(shared)] * k,
                "host arrays, one session a model")  # fmt: skip
    for k in args.concurrent_threads if on_gpu else [1]:
        measure("device_tensors", k, lambda k=k: [bound(shared) for _ in range(k)],
                "tensors on the device, one session a model")  # fmt: skip
    providers = [CUDA, CPU] if on_gpu else [CPU]
    u8: list[tuple[ort.InferenceSession, np.ndarray]] = []  # freed before the next way
    try:
        for m, x in zip(models, xs, strict=True):
            sess = ort.InferenceSession(with_uint8_input(m), m.session_options(),
                                        providers=providers)  # fmt: skip
            u8.append((sess, uint8_inputs(m, x)))
    except Exception as exc:
        out["failed"]["uint8_inputs"] = str(exc).splitlines()[0][:300]
        u8.clear()

    def u8_host() -> None:
        for sess, x in u8:
            sess.run(None, {U8_INPUT: x})

    for k in (args.concurrent_threads if on_gpu else [1]) if u8 else []:
        measure("uint8_inputs", k, lambda k=k: [u8_host] * k,
                "host arrays of uint8, normalised in the graph")  # fmt: skip
    u8.clear()
    k = min(max(args.concurrent_threads) if on_gpu else 1, 4)

    def own_sets() -> list[Runner]:
        extra = [[fresh_session(m, providers) for m in models] for _ in range(k - 1)]
        return [host(shared), *(host(s) for s in extra)]

    measure("own_sessions", k, own_sets, "host arrays, a session set a thread")
    return out


def probe_threads(models: list[Model], frames: list[records.Frame], size: int) -> dict[str, Any]:
    """After the warm-up: the first and second run of a warmed shape from a thread that never
    ran the session, twice (were a thread's first run slow, every inference thread would need
    a warm-up of its own)."""
    max_pixels = load_settings().scoring.max_image_pixels
    out: dict[str, Any] = {}
    for m in models:
        x = model_inputs(m, frames, size, max_pixels)

        def twice(m: Model = m, x: np.ndarray = x) -> list[float]:
            times = []
            for _ in range(2):
                t0 = time.perf_counter()
                m.session.run(None, {m.input_name: x})
                times.append(round((time.perf_counter() - t0) * 1000, 1))
            return times

        runs = []
        for _ in range(2):
            with ThreadPoolExecutor(1) as fresh:
                runs.append(fresh.submit(twice).result())
        out[m.ref] = {"new_thread_first_second_ms": runs}
        say(f"  {m.ref:20s} batch {size} in a new thread, first and second run: {runs} ms")
    return out


# ---------------------------------------------------------------- the scorer's own path
def cpu_topology() -> dict[str, Any]:
    """The CPU's model name and hardware threads a core (Linux; None where unknown): on a box
    whose cores are two threads each, the ceiling of cores x one thread's rate is twice what
    the cores can do, which reads as threads that scale badly."""
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        sib = Path("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list").read_text()
        per_core: int | None = cpu_list_size(sib)
    except (OSError, ValueError):
        per_core = None
    return {"cpu_model": model, "threads_per_core": per_core}


def cpu_list_size(text: str) -> int:
    """CPUs in a Linux CPU list such as "0,8" or "0-1" (a core's thread_siblings_list)."""
    n = 0
    for part in text.strip().split(","):
        first, _, last = part.partition("-")
        n += int(last or first) - int(first) + 1  # ValueError on a list it cannot read
    return n


def cpu_side(models: list[Model], frames: list[records.Frame]) -> dict[str, Any]:
    """CPU ms a frame, on one thread, of what the scorer does around the models: JPEG decode
    and each model's preprocessing into its batch tensor (Model.prepare). On a GPU this, not
    the models, bounds the scorer path: cores x 1000 / total_ms is the most the CPU can feed."""
    max_pixels = load_settings().scoring.max_image_pixels
    sample = frames[:32]

    def per_frame(fn: Any) -> float:
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        return round(best * 1000 / len(sample), 3)

    decode_ms = per_frame(lambda: [decode_image(f.jpeg, max_pixels) for f in sample])
    imgs = [decode_image(f.jpeg, max_pixels) for f in sample]
    prep = {m.ref: per_frame(lambda m=m: m.prepare(imgs)) for m in models}  # the batch tensor
    total = decode_ms + sum(prep.values())
    cores = os.cpu_count() or 1

    def feed(_: int) -> None:  # one batch of what the scorer path does on the CPU
        batch = [decode_image(f.jpeg, max_pixels) for f in sample[:16]]
        for m in models:
            m.prepare(batch)

    # the same work from one thread a core at once: does it scale as the ceiling assumes?
    with ThreadPoolExecutor(cores) as pool:
        list(pool.map(feed, range(cores)))
        t0 = time.perf_counter()
        list(pool.map(feed, range(cores * 3)))
        fed = cores * 3 * 16 / (time.perf_counter() - t0)
    out = {"decode_ms": decode_ms, "preprocess_ms": prep, "total_ms": round(total, 3),
           "cores": cores, "cpu_feed_ceiling_frames_per_s": round(cores * 1000 / total, 1),
           "cpu_feed_all_cores_frames_per_s": round(fed, 1), **cpu_topology()}  # fmt: skip
    say(f"  one thread, ms a frame: decode {decode_ms}, preprocessing {prep}; "
        f"{cores} cores feed at most {out['cpu_feed_ceiling_frames_per_s']:,} frames/s; "
        f"measured from {cores} threads at once: {fed:,.1f} frames/s "
        f"({out['cpu_model']}, {out['threads_per_core']} hardware threads a core)")  # fmt: skip
    return out


def bench_scorer_path(
    scorer: Scorer, frames: list[records.Frame], args: argparse.Namespace, budget: Budget,
    threads: int,
) -> dict[str, float]:  # fmt: skip
    """Frames/s of Scorer.score_frames (decode, preprocessing, every model) at each batch size,
    with ``threads`` batches in flight (preprocessing is CPU work; the models share the GPU).
    Every thread scores a batch before the clock starts: with one warm-up batch the first
    configuration measured ran at 213-231 frames/s where the same one later ran at 326-331
    (threads' first runs), which made the first configuration look the worst."""
    max_pixels = load_settings().scoring.max_image_pixels
    prep = prep_pool_size(scorer)
    out: dict[str, float] = {}
    rounds = max(1, args.iters // 5)  # batches a thread: 4 on the GPU, 1 in the dry run

    def score(fs: list[records.Frame]) -> None:
        scorer.score_frames(fs, max_pixels)

    with ThreadPoolExecutor(threads) as pool:
        for b in args.batches:
            if not budget.allows(f"scorer path batch {b}", args.phase_estimate_s):
                break
            list(pool.map(score, [frames[:b]] * threads))  # warm-up: every thread once
            batches = [frames[:b]] * (threads * rounds)
            t0 = time.perf_counter()
            list(pool.map(score, batches))
            fps = sum(len(x) for x in batches) / (time.perf_counter() - t0)
            out[str(b)] = round(fps, 1)
            say(f"  scorer path batch {b:4d}: {fps:,.1f} frames/s ({threads} threads, "
                f"preprocessing pool {prep})")  # fmt: skip
    return out


# ---------------------------------------------------------------- simulated streams
def prep_pool_size(scorer: Scorer) -> int:
    """Threads of the pool the scorer's models really preprocess on (1: none, in the batch's
    own thread)."""
    pool = scorer.image_models[0].prep_pool
    return pool._max_workers if isinstance(pool, ThreadPoolExecutor) else 1


async def simulate(
    scorer: Scorer, frames: list[records.Frame], n_streams: int, seconds: float,
    args: argparse.Namespace, pol: policy.Policy, index: BankIndex,
) -> dict[str, Any]:  # fmt: skip
    """n_streams streams at 1 fps each, open loop (a frame is captured on time whether or not
    the scorer kept up), through the micro-batcher into score_frames, then bank match and the
    policy's decision. Latency: capture -> decision, for every frame."""
    sc = load_settings().scoring
    executor = ThreadPoolExecutor(args.threads, thread_name_prefix="infer")
    sizes: set[int] = set()  # each new batch shape may cost the GPU a kernel search
    shapes = scorer.image_models[0].batch_shapes  # what the sessions really see

    ran: list[tuple[float, float]] = []  # each batch: (waited since capture, ran) in ms
    model_ms: dict[str, list[float]] = {}

    def score(fs: list[records.Frame]) -> list[Any]:
        sizes.add(len(fs))
        t0 = time.time()
        out = scorer.score_frames(fs, sc.max_image_pixels)
        ran.append(((t0 - min(f.captured_at for f in fs)) * 1000, (time.time() - t0) * 1000))
        for r in out:  # each model's ms a frame in this batch: where a slow batch spent it
            if not isinstance(r, images.ImageRejected):
                for name, ms in r[0].timings_ms.items():
                    model_ms.setdefault(name, []).append(ms * len(fs))
        return out

    lag = [0.0]  # the event loop's worst lateness: a blocked loop delays every decision

    async def watch_loop() -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.05)
            lag[0] = max(lag[0], (time.monotonic() - t - 0.05) * 1000)

    watcher = asyncio.create_task(watch_loop())

    batcher: MicroBatcher[records.Frame, Any] = MicroBatcher(
        score,
        args.sim_batch, sc.max_wait_ms, executor, concurrency=args.threads,
    )  # fmt: skip
    batcher.start()
    lat: list[float] = []
    actions: dict[str, int] = {}

    async def one(f: records.Frame) -> None:
        res = await batcher.submit(f)
        if isinstance(res, images.ImageRejected):
            return
        scored, h, _q, _img = res
        matches = index.match(h) if h else []
        hits = [
            policy.HashHit(m.bank.name, m.entry_id, m.bank.category, m.bank.role) for m in matches
        ]
        verdict = policy.evaluate(pol, scored.scores, hits, f.tenant)
        lat.append((time.time() - f.captured_at) * 1000)
        actions[verdict.action] = actions.get(verdict.action, 0) + 1

    tasks = []
    t0 = time.monotonic()
    total = int(seconds) * n_streams
    for k in range(total):
        due = t0 + (k // n_streams) + (k % n_streams) / n_streams
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        src = frames[k % len(frames)]
        f = src.model_copy(update={"stream_id": f"sim-{k % n_streams}", "seq": k // n_streams,
                                   "captured_at": time.time()})  # fmt: skip
        tasks.append(asyncio.create_task(one(f)))
    _done, late = await asyncio.wait(tasks, timeout=args.drain_s)
    for t in late:
        t.cancel()
    wall = time.monotonic() - t0
    watcher.cancel()
    await batcher.stop()
    executor.shutdown(wait=False, cancel_futures=True)
    v = sorted(lat)

    def pct(q: float, xs: list[float] = v) -> float | None:
        """The q-quantile of sorted values (None: none)."""
        return round(xs[min(len(xs) - 1, int(q * len(xs)))], 1) if xs else None

    def spread(xs: list[float]) -> dict[str, float | None] | None:
        xs = sorted(xs)
        return {"p50": pct(0.5, xs), "p95": pct(0.95, xs), "max": pct(1.0, xs)} if xs else None

    return {"streams": n_streams, "seconds": seconds, "frames_offered": total,
            "frames_decided": len(lat), "not_decided_within_drain": len(late),
            "decided_per_s": round(len(lat) / wall, 1), "p50_ms": pct(0.5), "p95_ms": pct(0.95),
            "p99_ms": pct(0.99), "batches": batcher.batches, "batch_sizes_seen": len(sizes),
            "batch_ran_ms": spread([r for _, r in ran]),
            "batch_waited_before_start_ms": spread([w for w, _ in ran]),
            "event_loop_worst_lag_ms": round(lag[0], 1),
            "model_ms_a_batch": {k: spread(v) for k, v in model_ms.items()},
            "session_shapes": sorted({shape_for(n, shapes) for n in sizes} if shapes else sizes),
            "preprocess_pool": prep_pool_size(scorer), "actions": actions}  # fmt: skip


def bank(n: int) -> BankIndex:
    """A review bank of n random PDQ hashes: the match step costs what it costs live."""
    rng = np.random.default_rng(0)
    words = rng.integers(0, 2**63, size=(n, 4), dtype=np.uint64)
    b = Bank("bench", 31, "review", "known_bad.review_bank")
    return BankIndex(words, np.zeros(n, np.int32), np.full(n, 31, np.uint16), [(b, "e", "hash")])


# ---------------------------------------------------------------- main
PHASES = ("models", "probe", "concurrent", "cpu", "threads", "path", "sim")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--budget-s", type=float, default=300, help="bound on the whole run (s)")
    ap.add_argument("--out", type=Path, help="also write the JSON result to this file")
    ap.add_argument("--models", help="comma-separated model names (default: scoring.models)")
    ap.add_argument("--batches", default="1,16,64,256", help="batch sizes on the GPU")
    ap.add_argument("--streams", default="100,500,2000", help="simulated stream counts on the GPU")
    ap.add_argument("--sim-seconds", type=float, default=10, help="length of each simulation")
    ap.add_argument("--sim-batch", type=int, default=16,
                    help="max_batch of the simulation's micro-batcher and the scorer path, "
                         "the one batch shape every batch is padded to (scoring.batch_shapes; "
                         "16: the scorer's GPU default)")  # fmt: skip
    ap.add_argument("--threads", type=int, default=0,
                    help="batches in flight (0: one per core on the GPU, as the scorer runs, 1 on the CPU)")  # fmt: skip
    ap.add_argument("--path-configs", default="2x1,16x1,2x0",
                    help="more scorer-path runs, each THREADSxPREPROCESS_THREADS (batches in "
                         "flight x scoring.preprocess_threads, 0 = one per core); GPU only")  # fmt: skip
    ap.add_argument("--iters", type=int, default=20, help="timed runs a batch size (GPU)")
    ap.add_argument("--fp16-tolerance", type=float, default=0.02,
                    help="largest change of a label score FP16 may cause and still count")  # fmt: skip
    ap.add_argument("--no-fp16", action="store_true", help="skip the FP16 conversion")
    ap.add_argument("--no-trt", action="store_true", help="skip TensorRT (its engine builds take minutes)")  # fmt: skip
    ap.add_argument("--dry-run", action="store_true", help="CPU dry run even when CUDA works")
    ap.add_argument("--phase-estimate-s", type=float, default=20,
                    help="time one timed phase may take; a phase starts only if this much is left")  # fmt: skip
    ap.add_argument("--drain-s", type=float, default=30, help="wait for a simulation's backlog")
    ap.add_argument("--phases", default=",".join(PHASES),
                    help=f"the phases to run, of {','.join(PHASES)} (a second run on the same "
                         "GPU can leave out what the first measured)")  # fmt: skip
    ap.add_argument(
        "--concurrent-batch",
        type=int,
        default=16,
        help="batch of the concurrent phase (the scorer's GPU max_batch)",
    )
    ap.add_argument(
        "--concurrent-threads",
        default="1,4,16",
        help="threads running the model set side by side (GPU)",
    )
    args = ap.parse_args(argv)
    args.phases = set(args.phases.split(","))
    if args.phases - set(PHASES):
        ap.error(f"unknown phase(s) {sorted(args.phases - set(PHASES))}: choose from {PHASES}")
    args.concurrent_threads = [int(x) for x in args.concurrent_threads.split(",")]
    args.warmup = 2
    args.batches = [int(x) for x in args.batches.split(",")]
    args.path_configs = [c for c in args.path_configs.split(",") if c]
    args.streams = [int(x) for x in args.streams.split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    budget = Budget(args.budget_s)
    settings = load_settings()
    names = args.models.split(",") if args.models else list(settings.scoring.models)
    say(f"goal: {GOAL}\nanchors: {ANCHORS}")
    on_gpu, why = (False, "--dry-run") if args.dry_run else probe_cuda(names)
    if not on_gpu:
        say(f"\n{NOT_MEASURED} ({why}).\nDry run of the same code on the CPU: batch 1 and 16, "
            "few iterations, 2 simulated streams; these are NOT GPU figures.\n")  # fmt: skip
        args.batches = [b for b in args.batches if b <= 16][:2] or [1]
        args.streams, args.sim_seconds, args.iters, args.warmup = [2], 2.0, 1, 1
        args.sim_batch, args.threads, args.drain_s = 16, 1, min(args.drain_s, 30)
        args.no_trt, args.path_configs = True, []
    args.threads = args.threads or ((os.cpu_count() or 1) if on_gpu else 1)
    providers = [CUDA, CPU] if on_gpu else [CPU]
    sc = settings.scoring
    models = load_models(names, [Path(d) for d in sc.model_dirs], providers,
                         intra_op_threads=sc.intra_op_threads, spin_wait=sc.spin_wait,
                         conv_search=sc.cudnn_conv_algo_search)  # fmt: skip
    # batches as large as the simulation's, each shape warmed once (scoring.batch_shapes)
    scorer = Scorer(models, sc.model_copy(update={"max_batch": args.sim_batch}))
    frames = sample_frames(max(args.batches))
    tmp = Path(tempfile.mkdtemp(prefix="fw-gpu-bench-"))
    ph = args.phases
    per_model: dict[str, Any] = {}
    if "models" in ph:
        say("per-model ms a batch (IO binding, tensors ready on the device):")
        per_model = bench_models(models, frames, args, on_gpu, budget, tmp)
    fps = set_fps(per_model, args.batches)
    say(f"model set frames/s, models only: {fps}")
    probe: dict[str, Any] = {}
    if "probe" in ph:
        say("a batch size never seen before: first run against warmed, per cuDNN search:")
        probe = probe_shapes(models, frames, on_gpu, budget, args)
    concurrent: dict[str, Any] = {}
    if "concurrent" in ph:
        say("models only, batches side by side:")
        concurrent = bench_concurrent(models, frames, on_gpu, budget, args)
    cpu: dict[str, Any] = {}
    if "cpu" in ph:
        say("CPU side of the scorer path (what feeds the models):")
        cpu = cpu_side(models, frames)
    warm_s = None
    if ph & {"path", "sim", "threads"}:
        say(f"warming batch shapes {scorer.image_models[0].batch_shapes or '(none)'} ...")
        warm_s = round(scorer.warm_up(), 1)
        say(f"  {warm_s} s")
    threads: dict[str, Any] = {}
    if "threads" in ph and models[0].batch_shapes:
        say("a warmed shape run from a thread that never ran the session:")
        threads = probe_threads(models, frames, models[0].batch_shapes[-1])
    path_fps: dict[str, float] = {}
    by_config: dict[str, dict[str, float]] = {}
    if "path" in ph:
        say("scorer path (JPEG decode + preprocessing + models, production sessions):")
        path_fps = bench_scorer_path(scorer, frames, args, budget, args.threads)
        for cfg in args.path_configs:
            t, p = (int(x) for x in cfg.split("x"))
            other = Scorer(models, scorer.settings.model_copy(update={"preprocess_threads": p}))
            by_config[cfg] = bench_scorer_path(other, frames, args, budget, t)
            if other.pool:
                other.pool.shutdown()
        # each Scorer points the shared models at its own preprocessing pool: the simulation
        # must run with the scorer's own settings, not the last configuration's (until
        # 2026-12-04 evening it did: those runs' simulations name the pool they ran with)
        if scorer.pool:
            scorer.pool.shutdown()
        scorer = Scorer(models, scorer.settings)
    pol = policy.load_dir(None, taxonomy.load(settings.taxonomy_file))
    index = bank(100_000)
    sims = []
    for n in args.streams if "sim" in ph else []:
        if not budget.allows(f"simulation of {n} streams", args.sim_seconds + 10):
            continue
        say(f"simulating {n} streams at 1 fps for {args.sim_seconds:g} s ...")
        sims.append(asyncio.run(simulate(scorer, frames, n, args.sim_seconds, args, pol, index)))
        say(f"  {json.dumps(sims[-1])}")
    side_by_side = [v for way in ("shared_sessions", "device_tensors", "uint8_inputs", "own_sessions")
                    for v in concurrent.get(way, {}).values()]  # fmt: skip
    best = max([*fps["best_allowed"].values(), *side_by_side], default=None)
    out = {
        "cuda": on_gpu, "cuda_note": why if not on_gpu else None,
        "measured_on_gpu": on_gpu, "result": "measured" if on_gpu else NOT_MEASURED,
        "device": _device_name() if on_gpu else "cpu (dry run)",
        "onnxruntime": ort.__version__, "providers": providers,
        "models": [m.ref for m in models], "batches": args.batches,
        "phases": sorted(ph), "per_model": per_model, "set_frames_per_s_models_only": fps,
        "new_batch_size_probe": probe, "models_side_by_side": concurrent,
        "batch_shapes": list(scorer.image_models[0].batch_shapes), "warm_up_s": warm_s,
        "new_thread_probe": threads,
        "cpu_side": cpu, "scorer_path_frames_per_s": path_fps, "threads": args.threads,
        "scorer_path_by_threads_x_preprocess_threads": by_config,
        "simulated_streams": sims,
        "goal_frames_per_s": GOAL_FPS, "goal": GOAL, "anchors": ANCHORS,
        "best_set_frames_per_s": best if on_gpu else None,
        "goal_met": (best is not None and best >= GOAL_FPS) if on_gpu else None,
        "skipped_over_budget": budget.skipped, "elapsed_s": round(time.monotonic() - budget.start, 1),
        "budget_s": args.budget_s,
    }  # fmt: skip
    if on_gpu:
        say(f"best model-set figure {best} frames/s against the goal {GOAL_FPS:,}")
    else:
        say(f"{NOT_MEASURED}; ceiling it will be compared with: {GOAL}")
    line = json.dumps(out)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(line + "\n")
    print(line)
    return 0


def _device_name() -> str:
    """The GPU's name from nvidia-smi, when it is there."""
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=10).stdout.strip() or "gpu"  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "gpu (nvidia-smi not found)"


if __name__ == "__main__":
    sys.exit(main())
