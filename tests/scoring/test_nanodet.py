"""The NanoDet object detector: its head decoding, boxes where the objects are in real photos,
and each mapped label firing on its eval samples and not on the bundled safe set."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from devkit import testdata
from framewatch import records
from scoring import nanodet, registry
from scoring.builtin import BUILTIN
from scoring.errors import ModelError

EVAL = testdata.testdata_dir() / "eval"
SAFE = EVAL / "safe"
CPU = ["CPUExecutionProvider"]

# Boxes (x0, y0, x1, y1 in px of the 640-px eval copies) read by eye off the pictures drawn
# with a 50-px grid over them (cv2.line every 50 px, labelled every 100): the outermost
# pixels of each animal, bicycle, truck and person.
TRUTH = {
    "darknet-dog.jpg": [("dog", (110, 183, 255, 450)), ("bicycle", (105, 112, 472, 350)),
                        ("truck", (390, 62, 562, 140))],
    "darknet-person.jpg": [("person", (190, 100, 270, 373)), ("horse", (405, 138, 600, 345)),
                           ("dog", (65, 264, 200, 345))],
    "darknet-horses.jpg": [("horse", (0, 160, 262, 340)), ("horse", (200, 163, 347, 300)),
                           ("horse", (357, 175, 494, 288)), ("horse", (0, 155, 128, 232))],
}  # fmt: skip
# safe images with people in them (the Scream is a painted figure): a person signal there is
# right, signals are not violations
PEOPLE_IN_SAFE = {"darknet-person.jpg", "darknet-kite.jpg", "darknet-scream.jpg"}
SIGNALS = {
    "signal/person": "signal.person",
    "signal/object/scissors": "signal.object.scissors",
    "signal/object/bottle": "signal.object.bottle",
    "signal/object/wine_glass": "signal.object.wine_glass",
    "violence/weapons/knife": "violence.weapons.knife",
}


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


# ------------------------------------------------------------------ pure decoding
def test_a_cell_decodes_to_its_centre_moved_by_the_expected_bin_distances() -> None:
    """One 2x2 level of stride 8 (a 16-px input): class 1 at cell (x=1, y=0) with bins that
    put all mass on 2 (left), 1 (top), 0 (right) and half on 1 and 3 (bottom, expected 2)."""
    lv = nanodet.levels([[1, 4, 3], [1, 4, 16]], n_classes=3, size=16)
    assert [(x.side, x.stride) for x in lv] == [(2, 8.0)]
    cls = np.zeros((4, 3), np.float32)
    cls[1, 1] = 0.9
    cls[2, 0] = 0.1  # under the threshold
    reg = np.full((4, 4, 4), -30.0, np.float32)
    reg[1, 0, 2] = reg[1, 1, 1] = reg[1, 2, 0] = 30.0
    reg[1, 3, 1] = reg[1, 3, 3] = 30.0
    boxes, scores, classes = nanodet.decode([cls, reg.reshape(4, 16)], lv, 0.3)
    assert classes.tolist() == [1] and scores.tolist() == pytest.approx([0.9])
    cx, cy = 12.0, 4.0  # (1 + 0.5) * 8, (0 + 0.5) * 8
    assert boxes[0] == pytest.approx([cx - 16, cy - 8, cx - 0, cy + 16], abs=1e-3)


def test_levels_pair_outputs_by_cells_and_refuse_what_is_not_nanodet() -> None:
    shapes = [[1, 169, 80], [1, 169, 44], [1, 676, 80], [1, 2704, 80], [1, 676, 44],
              [1, 2704, 44]]  # fmt: skip  # the order the converted graph gives them
    lv = nanodet.levels(shapes, 80, 416)
    assert [(x.side, x.stride, x.cls, x.box) for x in lv] == [
        (52, 8.0, 3, 5), (26, 16.0, 2, 4), (13, 32.0, 0, 1)]  # fmt: skip
    with pytest.raises(ModelError, match="not square"):
        nanodet.levels([[1, 169, 80]], 80, 416)  # no box output
    with pytest.raises(ModelError, match="neither 80"):
        nanodet.levels([[1, 169, 81]], 80, 416)


def test_nms_keeps_the_best_box_per_class_and_other_classes_overlapping() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10]], np.float32)
    keep = nanodet.nms(boxes, np.array([0.5, 0.8, 0.6]), np.array([0, 0, 1]), 0.3, 0.5)
    assert keep.tolist() == [1, 2]


def test_count_scores_are_the_nth_best_detection() -> None:
    spec = registry.CountSpec(label="person", at_least=2, category="signal.person.group")

    def det(label: str, score: float) -> records.Detection:
        return records.Detection(label=label, category=None, score=score, box=(0, 0, 1, 1),
                                 model="m")  # fmt: skip

    assert nanodet.count_scores([det("person", 0.9)], [spec]) == {"signal.person.group": 0.0}
    got = nanodet.count_scores([det("person", 0.9), det("dog", 0.8), det("person", 0.4)], [spec])
    assert got == {"signal.person.group": 0.4}


def test_a_count_of_an_unknown_label_or_category_stops_start_up() -> None:
    spec = {**BUILTIN["nanodet"]}
    spec["output"] = {**spec["output"], "counts": [
        {"label": "persons", "at_least": 2, "category": "signal.person.group"}]}  # fmt: skip
    with pytest.raises(ModelError, match=r"output.counts.0.label"):
        registry.parse(spec, "t")
    spec["output"]["counts"] = [{"label": "person", "at_least": 2, "category": "signal.crowd"}]
    with pytest.raises(ModelError, match=r"output.counts.0.*signal.crowd"):
        registry.parse(spec, "t")


# ------------------------------------------------------------------ the real model
@pytest.fixture(scope="module")
def model() -> nanodet.NanoDetModel:
    from scoring.model import load_models

    (m,) = load_models(["nanodet"], [], CPU)
    assert isinstance(m, nanodet.NanoDetModel)
    return m


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_boxes_land_on_the_objects_of_the_darknet_photos(
    model: nanodet.NanoDetModel, name: str
) -> None:
    img = cv2.imread(str(SAFE / name))
    h, w = img.shape[:2]
    found = model.objects(img)
    hits = 0
    for label, truth in TRUTH[name]:
        best = max((iou(truth, (b[0] * w, b[1] * h, b[2] * w, b[3] * h))
                    for lab, _, b in found if lab == label), default=0.0)  # fmt: skip
        hits += best >= 0.6
    # every object of dog.jpg and person.jpg; horses.jpg: one grey horse comes out a cow
    assert hits >= len(TRUTH[name]) - (1 if name == "darknet-horses.jpg" else 0), found


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".jpg")


def test_each_label_fires_on_its_samples_and_not_on_the_safe_set(
    model: nanodet.NanoDetModel,
) -> None:
    for folder, cat in SIGNALS.items():
        paths = _images(EVAL / folder)
        assert len(paths) >= 2
        for p in paths:
            (r,) = model.run([cv2.imread(str(p))])
            assert r.scores[cat] >= 0.3, (p.name, r.scores)
            assert any(d.category == cat for d in r.detections)
    for p in _images(SAFE):
        (r,) = model.run([cv2.imread(str(p))])
        fired = {c for c, v in r.scores.items() if v > 0}
        if p.name in PEOPLE_IN_SAFE:
            assert fired <= {"signal.person", "signal.person.group"} and "signal.person" in fired
        else:
            assert fired == set(), (p.name, r.scores)


def test_people_are_counted_with_their_boxes(model: nanodet.NanoDetModel) -> None:
    (kite,) = model.run([cv2.imread(str(SAFE / "darknet-kite.jpg"))])
    people = [d for d in kite.detections if d.label == "person"]
    assert len(people) >= 4 and kite.scores["signal.person.group"] >= 0.5
    assert all(d.category == "signal.person" and d.model == "nanodet@3.0.4" for d in people)
    (one,) = model.run([cv2.imread(str(SAFE / "darknet-person.jpg"))])
    assert [d.label for d in one.detections] == ["person"]  # the horse and dog are not kept
    assert one.scores["signal.person.group"] == 0.0


def test_knife_and_person_samples_reach_the_shipped_armed_person_rule(
    model: nanodet.NanoDetModel,
) -> None:
    """The scores tests/streams/test_combined.py feeds the stream engine are the model's."""
    from framewatch import policy, taxonomy

    (rule,) = [c for c in policy.load_dir(None, taxonomy.load()).combined(None, None)
               if c.name == "armed_person"]  # fmt: skip
    need = dict(rule.all)
    for folder, node in (("violence/weapons/knife", "violence.weapons"),
                         ("signal/person", "signal.person")):  # fmt: skip
        for p in _images(EVAL / folder):
            (r,) = model.run([cv2.imread(str(p))])
            got = max(v for c, v in r.scores.items() if c.startswith(node))
            assert got >= need[node], (p.name, got)


def test_the_manifest_labels_are_the_converted_models_class_order() -> None:
    from importlib import resources

    shipped = (resources.files("scoring") / "models" / "nanodet.labels.txt").read_text()
    assert BUILTIN["nanodet"]["output"]["labels"] == shipped.splitlines()
