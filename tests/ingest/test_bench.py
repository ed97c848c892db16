"""benchmarks/ingest.py says where the full pipeline's CPU goes past decoding: each step of
``SampleEngine.process`` on its own clock, in its printout and its JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devkit.testdata import video

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]


def test_the_ingest_benchmark_breaks_a_pass_down_by_step() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ingest.py"), str(video("doorknob-hd-no-bar.mp4")),
         "--paced-seconds", "0", "--step-rounds", "2"],
        capture_output=True, text=True, timeout=100, check=True, cwd=ROOT,
    )  # fmt: skip
    lines = out.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    steps = result["steps_ms_per_pass"]
    assert set(steps) == {"pdq", "thumbnail", "scene_signature", "scene_compare", "pass"}
    # 4 s at 1 fps: 4 samples hashed and thumbnailed, 5 scene checks a second between them
    assert steps["pdq"] > 0 and steps["thumbnail"] > 0 and steps["scene_signature"] > 0
    past = sum(v for k, v in steps.items() if k != "pass")
    assert past < steps["pass"]
    assert result["frames"]["full"]["sent"] == 4
    printed = next(line for line in lines if line.startswith("full pipeline past decoding"))
    assert f"PDQ {steps['pdq']:.1f}" in printed and "0.9 of the ceiling allows" in printed
