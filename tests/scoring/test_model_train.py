"""`framewatch model train` and `framewatch check` through the real command: a custom category
(from a taxonomy file) trained on a few images, loaded by the scorer like any model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from devkit import testdata
from framewatch import pdq, taxonomy
from framewatch.settings import load_settings
from scoring.model import load_models
from scoring.scorer import Scorer

CLI = [sys.executable, "-m", "framewatch.cli"]
EVAL = testdata.testdata_dir() / "eval"
SLOTS = sorted((EVAL / "gambling" / "casino").glob("*.jpg"))
SAFE = sorted((EVAL / "safe").glob("*.jpg"))


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **env})  # fmt: skip


def _copy(folder: Path, paths: list[Path]) -> Path:
    folder.mkdir(parents=True)
    for p in paths:
        (folder / p.name).write_bytes(p.read_bytes())
    return folder


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A platform's own category (its taxonomy file), a model folder, CPU only."""
    tax = tmp_path / "taxonomy.yaml"
    tax.write_text("gambling:\n  children:\n    casino:\n      children: [slot_overlay]\n")
    return {"FRAMEWATCH_TAXONOMY_FILE": str(tax),
            "FRAMEWATCH_SCORING__MODEL_DIRS": json.dumps([str(tmp_path / "models")]),
            "FRAMEWATCH_SCORING__PROVIDERS": '["CPUExecutionProvider"]'}  # fmt: skip


def test_train_writes_a_head_the_scorer_loads_and_that_ranks_held_out_images(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pos = _copy(tmp_path / "pos", SLOTS[:-1])  # the last slot machine and safe image held out
    neg = _copy(tmp_path / "neg", SAFE[:-1])
    (neg / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    r = _run(["model", "train", "slots", "--category", "gambling.casino.slot_overlay",
              "--positive", str(pos), "--negative", str(neg), "--json"], env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    cv = rep["cross_validation"]
    assert (cv["positives"], cv["negatives"], cv["folds"]) == (5, len(SAFE) - 1, 5)
    assert 0 <= cv["precision"] <= 1 and 0 <= cv["recall"] <= 1
    assert [s["file"] for s in rep["skipped"]] == [str(neg / "broken.jpg")]
    assert "skipped" in r.stderr and "broken.jpg" in r.stderr
    assert "embedded" in r.stderr  # progress
    models = tmp_path / "models"
    assert {p.name for p in models.iterdir()} == {"slots.yaml", "slots.onnx"}
    assert "cross-validation" in (models / "slots.yaml").read_text()

    # the scorer loads it like any model (settings as an operator gives them)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    tax = taxonomy.load(s.taxonomy_file)
    ms = load_models(["efficientnet-lite3", "slots"], [Path(d) for d in s.scoring.model_dirs],
                     ["CPUExecutionProvider"], tax)  # fmt: skip
    imgs = [cv2.imread(str(SLOTS[-1])), cv2.imread(str(SAFE[-1]))]
    qs = [pdq.hash_rgb(pdq.shrink_still(i)[:, :, ::-1])[1] for i in imgs]
    held_pos, held_neg = Scorer(ms).score(imgs, qs)
    cat = "gambling.casino.slot_overlay"
    assert held_pos.scores[cat] > held_neg.scores[cat]
    assert held_pos.scores[cat] > 0.5 > held_neg.scores[cat]


def test_train_refuses_too_few_images_and_unknown_categories(
    tmp_path: Path, env: dict[str, str]
) -> None:
    pos = _copy(tmp_path / "pos", SLOTS[:2])
    neg = _copy(tmp_path / "neg", SAFE[:5])
    r = _run(["model", "train", "slots", "--category", "gambling.casino", "--positive", str(pos),
              "--negative", str(neg)], env)  # fmt: skip
    assert r.returncode != 0
    assert "too few images" in r.stderr and "at least 3" in r.stderr
    r = _run(["model", "train", "logo", "--category", "brand.logo", "--positive", str(pos),
              "--negative", str(neg)], env)  # fmt: skip
    assert r.returncode != 0 and "taxonomy_file" in r.stderr
    r = _run(["model", "train", "--help"], env)
    assert r.returncode == 0 and "cross-validated" in r.stdout


def test_check_json_shows_the_new_categories(env: dict[str, str]) -> None:
    gun = EVAL / "violence" / "weapons" / "firearm" / "clipart-9_mm_gun_01.jpg"
    safe = EVAL / "safe" / "clipart-drinking_glass_with_red_punch_01.jpg"
    r = _run(
        ["check", str(gun), str(safe), "--json"], {**env, "FRAMEWATCH_SCORING__TEXT_EVERY": "0"}
    )
    assert r.returncode == 0, r.stderr
    got, punch = json.loads(r.stdout)
    for cat in ("violence.weapons.firearm", "violence.weapons.blade", "alcohol.beverage",
                "drugs.paraphernalia", "gambling.casino"):  # fmt: skip
        assert cat in got["scores"]
    assert got["scores"]["violence.weapons.firearm"] > 0.5
    assert got["decision"] == "review"
    assert got["reasons"][0]["category"] == "violence.weapons.firearm"
    assert got["models"]["violence.weapons.firearm"].startswith("efficientnet-lite3@")
    assert punch["decision"] == "allow"  # red punch looks like wine, under the 0.75 threshold
