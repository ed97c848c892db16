"""efficientnet-lite3: ImageNet classes mapped onto the taxonomy, on the bundled labelled set
(devkit/data/eval), and its embedding computed once per frame for the heads that read it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from devkit import testdata
from framewatch import pdq, taxonomy
from framewatch.policy import load_dir
from scoring import registry, train
from scoring.errors import ModelError
from scoring.evaluate import category_score
from scoring.heads import Head
from scoring.model import Model, load_models
from scoring.scorer import INFERRED, Scorer
from tests.scoring.conftest import frames

CPU = ["CPUExecutionProvider"]
EVAL = testdata.testdata_dir() / "eval"
# category -> positives of devkit/data/eval that must reach the shipped policy's review
# threshold (measured 2026-12-02; clip art is a stand-in for photos: docs/scoring.md)
RECALL_FLOOR = {
    "violence.weapons.firearm": 9,  # of 10: an AK-47 drawn over a patterned frame is missed
    "violence.weapons.blade": 4,  # of 10
    "alcohol.beverage": 3,  # of 16: cocktails, martinis and a beer jug are not ImageNet drinks
    "drugs.paraphernalia": 2,  # of 6: the drawn syringe and pill jar are missed
    "gambling.casino": 4,  # of 6 drawn slot machines
}


@pytest.fixture(scope="module")
def backbone() -> Model:
    (m,) = load_models(["efficientnet-lite3"], [], CPU)
    return m


@pytest.fixture(scope="module")
def scored(backbone: Model) -> dict[Path, dict[str, float]]:
    """Every image of the bundled labelled set, scored and quality-gated as live."""
    scorer = Scorer([backbone])
    out = {}
    for p in sorted(EVAL.rglob("*.jpg")):
        img = cv2.imread(str(p))
        _, q = pdq.hash_rgb(pdq.shrink_still(img)[:, :, ::-1])
        out[p] = scorer.score([img], [q])[0].scores
    return out


def _label(p: Path) -> str:
    """The category of an image of the labelled set: its folder path (DIR/<category path>/)."""
    return ".".join(p.parent.relative_to(EVAL).parts)


def test_each_category_fires_on_its_positives_and_never_on_the_safe_set(
    scored: dict[Path, dict[str, float]],
) -> None:
    policy = load_dir(None, taxonomy.load())
    safe = {p: s for p, s in scored.items() if p.parent.name == "safe"}
    assert len(safe) >= 29
    for cat, floor in RECALL_FLOOR.items():
        rule = policy.rule(cat, None, None)
        assert rule.at_most == "review", cat  # a review signal, never a block on its own
        pos = [category_score(s, cat) for p, s in scored.items() if _label(p) == cat]
        assert sum(v >= rule.review for v in pos) >= floor, (cat, rule.review, sorted(pos))
        loud = {p.name: category_score(s, cat) for p, s in safe.items()}
        assert max(loud.values()) < rule.review, (cat, max(loud.items(), key=lambda kv: kv[1]))


def test_several_imagenet_classes_add_up_into_one_category(backbone: Model) -> None:
    img = cv2.imread(str(EVAL / "alcohol" / "beverage" / "clipart-bottiglia_di_vino_pregi_01.jpg"))
    (r,) = backbone.run([img])
    drinks = [lab for lab, path in backbone.manifest.labels.items() if path == "alcohol.beverage"]
    parts = [r.raw[lab] for lab in drinks]
    assert r.scores["alcohol.beverage"] == pytest.approx(min(sum(parts), 1.0), abs=1e-6)
    assert r.raw["red wine"] > 0.2 and r.raw["wine bottle"] > 0.1  # the mass is split
    assert r.scores["alcohol.beverage"] > max(parts) + 0.1
    assert r.features["embedding"].shape == (1280,)


def _images(folder: Path, paths: list[Path]) -> Path:
    folder.mkdir()
    for p in paths:
        (folder / p.name).write_bytes(p.read_bytes())
    return folder


@pytest.fixture(scope="module")
def heads(tmp_path_factory: pytest.TempPathFactory, backbone: Model) -> Path:
    """Two heads trained on the bundled set: firearms and drinks (each against the safe set)."""
    root = tmp_path_factory.mktemp("heads")
    safe = sorted((EVAL / "safe").glob("clipart-*.jpg"))
    neg = _images(root / "neg", safe)
    tax = taxonomy.load()
    for name, cat in (("guns", "violence.weapons.firearm"), ("drinks", "alcohol.beverage")):
        pos = _images(root / name, sorted((EVAL / cat.replace(".", "/")).glob("clipart-*.jpg")))
        train.train(name, cat, pos, neg, root / "models", backbone, "efficientnet-lite3.embedding",
                    tax, 40_000_000)  # fmt: skip
    return root / "models"


def _count(name: str) -> float:
    return INFERRED.labels(model=name)._value.get()


def test_the_backbone_runs_once_per_frame_however_many_heads_read_it(
    heads: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = load_models(["efficientnet-lite3", "guns", "drinks"], [heads], CPU)
    backbone = models[0]
    assert [type(m) for m in models] == [Model, Head, Head]
    runs = []
    real = backbone.session.run
    monkeypatch.setattr(backbone.session, "run", lambda *a, **k: runs.append(1) or real(*a, **k))
    before = {n: _count(n) for n in ("efficientnet-lite3", "guns", "drinks")}
    imgs = [cv2.imread(str(EVAL / "violence" / "weapons" / "firearm" / "clipart-9_mm_gun_01.jpg")),
            *frames("chair-orig-22-sd-bar.mp4", count=2)]  # fmt: skip
    out = Scorer(models).score(imgs)
    assert len(runs) == 1  # one batch of 3 frames, one backbone inference for both heads
    for n in ("efficientnet-lite3", "guns", "drinks"):
        assert _count(n) - before[n] == 3, n  # framewatch_scoring_model_images_total
    refs = {m.manifest.name: m.ref for m in models}
    assert out[0].per_model[refs["guns"]]["violence.weapons.firearm"] > 0.5
    assert all(s.per_model[refs["guns"]]["violence.weapons.firearm"] < 0.5 for s in out[1:])
    assert set(out[0].timings_ms) == {"efficientnet-lite3", "guns", "drinks"}


def test_a_head_without_its_backbone_in_the_model_set_stops_start_up(heads: Path) -> None:
    with pytest.raises(ModelError, match=r"'input\.from'.*add it to scoring\.models"):
        load_models(["guns"], [heads], CPU)


def test_a_head_reading_a_missing_output_stops_start_up(heads: Path, tmp_path: Path) -> None:
    data = yaml.safe_load((heads / "guns.yaml").read_text())
    data["input"] = {"from": "efficientnet-lite3.pooled"}
    data["source"] = {"path": str(heads / "guns.onnx")}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ModelError, match=r"no feature output 'pooled'.*embedding"):
        load_models(["efficientnet-lite3", "bad"], [tmp_path], CPU)


def test_head_manifest_errors_name_the_field(tmp_path: Path) -> None:
    bad = {"name": "x", "version": "1", "licence": "mine", "source": {"path": "x.onnx"},
           "input": {"from": "no-dot"}, "output": {"decoding": "probabilities",
           "labels": ["a", "b"]}, "labels": {"b": "gambling"}}  # fmt: skip
    with pytest.raises(ModelError, match=r"field 'input\.from'"):
        registry.parse(bad, "test")


def test_frames_where_the_backbone_is_skipped_skip_its_heads_too(heads: Path) -> None:
    from framewatch.settings.scoring import ScoringSettings

    models = load_models(["opennsfw", "efficientnet-lite3", "guns"], [heads], CPU)
    # the backbone declared costlier than opennsfw (37), so a 38-ms budget leaves it out
    models[1].manifest = models[1].manifest.model_copy(update={"cost_ms": 65})
    sc = ScoringSettings(frame_budget_ms=38, costly_every=5, suspicion=0.99)
    out = Scorer(models, sc).score(frames("pattern-hd-no-bar.mp4", count=2), seqs=[1, 5])
    refs = [m.ref for m in models]
    assert out[0].skipped == refs[1:] and set(out[0].per_model) == {refs[0]}
    assert not out[1].skipped and set(out[1].per_model) == set(refs)
    assert np.isfinite(out[1].timings_ms["guns"])


def test_eval_can_measure_each_category_at_its_own_policy_thresholds() -> None:
    from scoring.evaluate import Sample, report

    samples = [Sample(Path("a"), "gambling.casino", {"gambling.casino": 0.2}),
               Sample(Path("b"), "sexual", {"sexual": 0.6}),
               Sample(Path("c"), "safe", {"gambling.casino": 0.1})]  # fmt: skip
    rep = report(samples, 0.5, 0.85, 0.9, {"gambling.casino": (0.15, 0.9)})
    assert rep["gambling.casino"]["at_review"]["threshold"] == 0.15
    assert rep["gambling.casino"]["at_review"]["recall"] == 1.0
    assert rep["sexual"]["at_review"]["threshold"] == 0.5  # not named: the common threshold


def test_a_shadow_model_set_runs_heads_on_its_backbone_too(heads: Path) -> None:
    """The shadow process wraps each model in a guard; its heads still read the embedding."""
    from framewatch.settings.scoring import ScoringSettings
    from scoring import shadow_process

    shadow_process._load(["efficientnet-lite3", "guns"], [heads], CPU, ScoringSettings())
    gun = cv2.imread(str(EVAL / "violence" / "weapons" / "firearm" / "clipart-9_mm_gun_01.jpg"))
    (out,) = shadow_process._score([gun], [None], [0], 40_000_000)
    [head_ref] = [r for r in out.per_model if r.startswith("guns@")]
    assert out.per_model[head_ref]["violence.weapons.firearm"] > 0.5
