"""benchmarks/gpu.py, the prepared GPU run: on a machine without CUDA it must say so, still run
the same code on the CPU (batch 1 and 16, FP16 conversion, simulated streams through the real
scorer path and the policy), and end with one JSON line, also written to --out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]


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
    assert set(last["scorer_path_frames_per_s"]) == {"1", "16"}
    (sim,) = last["simulated_streams"]
    assert sim["frames_offered"] == 4 and sim["frames_decided"] == 4
    assert sim["p95_ms"] is not None and sum(sim["actions"].values()) == 4
