"""`framewatch eval DIR` on a tiny generated labelled set, through the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from devkit.evalset import skin_composite
from scoring import evaluate
from tests.scoring.conftest import frames

CLI = [sys.executable, "-m", "framewatch.cli"]


def test_metrics_at_threshold_and_target_precision() -> None:
    pairs = [(0.9, True), (0.8, True), (0.7, False), (0.6, True), (0.2, False)]
    m = evaluate.at_threshold(pairs, 0.65)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 1, 1)
    assert m["precision"] == pytest.approx(2 / 3, abs=1e-3)
    assert m["recall"] == pytest.approx(2 / 3, abs=1e-3)
    assert evaluate.threshold_for_precision(pairs, 1.0) == 0.8  # most recall at precision 1
    assert evaluate.threshold_for_precision(pairs, 0.75) == 0.6
    assert evaluate.threshold_for_precision([(0.9, False), (0.1, True)], 0.9) is None


def test_category_score_counts_deeper_nodes() -> None:
    s = {"sexual.explicit.exposed_anus": 0.7, "sexualised": 0.9, "violence.gore": 0.2}
    assert evaluate.category_score(s, "sexual") == 0.7


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("labelled")
    (root / "safe").mkdir()
    (root / "sexual").mkdir()
    safe = frames("chair-orig-22-sd-bar.mp4", count=2) + frames("pattern-hd-no-bar.mp4", count=2)
    for i, img in enumerate(safe):
        cv2.imwrite(str(root / "safe" / f"s{i}.jpg"), img)
    wall = np.full((384, 683, 3), (170, 190, 205), np.uint8)  # a beige wall, BGR
    for i in range(3):
        cv2.imwrite(str(root / "sexual" / f"p{i}.png"), skin_composite(wall, i))
    return root


def _env() -> dict[str, str]:
    return {**os.environ, "FRAMEWATCH_SCORING__PROVIDERS": '["CPUExecutionProvider"]'}


def test_eval_reports_per_category_and_writes_plots(labelled: Path, tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    r = subprocess.run([*CLI, "eval", str(labelled), "--json", "--plots", str(plots)],
                       capture_output=True, text=True, timeout=600, env=_env())  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "eval: scored 7/7" in r.stderr  # progress on stderr, JSON alone on stdout
    rep = json.loads(r.stdout)
    assert rep["images"] == 7
    sexual = rep["categories"]["sexual"]
    assert (sexual["positives"], sexual["negatives"]) == (3, 4)
    at = sexual["at_review"]
    assert at["tp"] + at["fn"] == 3 and at["threshold"] == 0.5
    assert 0 <= at["precision"] <= 1 and 0 <= at["recall"] <= 1
    assert set(sexual["perturbation_mean_change"]) == set(evaluate.PERTURBATIONS)
    assert set(sexual["perturbation_mean_change_safe"]) == set(evaluate.PERTURBATIONS)
    # grey removes the skin tone the models key on: the scores must drop, not stay put
    assert sexual["perturbation_mean_change"]["grey"] < 0
    with Image.open(sexual["pr_plot"]) as im:
        assert im.format == "PNG" and im.size == (400, 400)


def test_eval_refuses_a_folder_that_is_not_a_category(tmp_path: Path) -> None:
    (tmp_path / "safe").mkdir()
    (tmp_path / "nonsense").mkdir()
    cv2.imwrite(str(tmp_path / "safe" / "a.jpg"), np.zeros((64, 64, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "nonsense" / "b.jpg"), np.zeros((64, 64, 3), np.uint8))
    r = subprocess.run([*CLI, "eval", str(tmp_path), "--no-perturb"], capture_output=True,
                       text=True, timeout=300, env=_env())  # fmt: skip
    assert r.returncode == 1
    assert "nonsense" in r.stderr and "not a taxonomy path" in r.stderr
