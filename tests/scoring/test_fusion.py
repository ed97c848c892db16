"""Fusion of model scores and the low-information gate, on the real models and real frames."""

from __future__ import annotations

import numpy as np
import pytest

from devkit.evalset import doorknob_samples, skin_composite
from framewatch.pdq import hash_rgb
from framewatch.settings.scoring import FusionRule, ScoringSettings
from scoring import fusion
from scoring.model import decode_image
from scoring.scorer import Scorer
from tests.scoring.conftest import jpeg

VOTES = {"a@1": {"sexual": 0.9, "violence.gore": 0.2}, "b@1": {"sexual": 0.3}}


@pytest.mark.parametrize(
    ("rule", "sexual", "gore"),
    [
        (FusionRule(method="max"), 0.9, 0.2),
        (FusionRule(method="mean"), 0.6, 0.2),
        (FusionRule(method="agree", k=2), 0.3, 0.0),  # gore: only one model reports it
        (FusionRule(method="agree", k=1), 0.9, 0.2),
    ],
)
def test_fusion_methods(rule: FusionRule, sexual: float, gore: float) -> None:
    scores, refs = fusion.fuse(VOTES, {}, rule)
    assert scores["sexual"] == pytest.approx(sexual)
    assert scores["violence.gore"] == pytest.approx(gore)
    assert refs["violence.gore"] == "a@1"


def test_deepest_rule_wins() -> None:
    rules = {"sexual": FusionRule(method="mean"), "sexual.explicit": FusionRule(method="max")}
    default = FusionRule(method="agree", k=3)
    assert fusion.rule_for("sexual.explicit.exposed_anus", rules, default).method == "max"
    assert fusion.rule_for("sexual", rules, default).method == "mean"
    assert fusion.rule_for("violence.gore", rules, default) is default


def test_gate_damps_classifiers_only() -> None:
    s = {"sexual": 0.8, "known_bad.csam_bank": 1.0}
    assert fusion.gate(s, 20, 50, 0.5) == {"sexual": 0.4, "known_bad.csam_bank": 1.0}
    assert fusion.gate(s, 20, 50, 0.0) == {"known_bad.csam_bank": 1.0}
    assert fusion.gate(s, 50, 50, 0.0) == s  # at the floor: informative enough
    assert fusion.gate(s, None, 50, 0.0) == s  # quality unknown: not gated


@pytest.fixture(scope="module")
def doorknob() -> list[tuple[np.ndarray, int]]:
    return [(decode_image(jpeg(img), 40_000_000), q) for img, q in doorknob_samples()]


def test_flat_wall_frames_no_longer_reach_review(builtin_models, doorknob) -> None:  # type: ignore[no-untyped-def]
    review = ScoringSettings().review_threshold
    walls = [(img, q) for img, q in doorknob if q < ScoringSettings().quality_floor]
    assert len(walls) == 2, [q for _, q in doorknob]
    imgs, qs = [w[0] for w in walls], [w[1] for w in walls]
    before = Scorer(builtin_models, ScoringSettings(quality_floor=0)).score(imgs, qs)
    assert all(s.scores["sexual"] >= review for s in before)  # the false alarm being fixed
    after = Scorer(builtin_models).score(imgs, qs)
    assert all(s.scores["sexual"] < review for s in after), [s.scores for s in after]


def test_informative_skin_toned_frame_still_reaches_review(builtin_models, doorknob) -> None:  # type: ignore[no-untyped-def]
    """Skin-toned shapes with edges painted on the same wall: an informative frame the models
    score high stays high (a synthetic stand-in: no explicit picture ships in a package)."""
    wall = next(img for img, q in doorknob if q < ScoringSettings().quality_floor)
    img = skin_composite(wall, 0)
    _, q = hash_rgb(np.ascontiguousarray(img[:, :, ::-1]))
    assert q >= ScoringSettings().quality_floor
    s = Scorer(builtin_models).score([img], [q])[0]
    assert s.scores["sexual"] >= ScoringSettings().review_threshold, s.per_model


def test_fusion_settings_reach_a_child_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """`framewatch up`/the demo hand settings to children as env: rules must survive it."""
    from framewatch.settings import load_settings, to_env

    s = load_settings(scoring={"fusion": {"sexual": {"method": "agree", "k": 2}},
                               "fusion_default": {"method": "mean"}})  # fmt: skip
    for k, v in to_env(s).items():
        monkeypatch.setenv(k, v)
    child = load_settings().scoring
    assert child.fusion == {"sexual": FusionRule(method="agree", k=2)}
    assert child.fusion_default.method == "mean"
