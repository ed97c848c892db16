"""QR codes and spam text rendered onto real video frames are found."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import zxingcpp

from framewatch import records
from scoring import text
from scoring.textgate import TextGate, same_words
from tests.scoring.conftest import frames


def _with_qr(frame: np.ndarray, payload: str) -> np.ndarray:
    qr = np.asarray(
        zxingcpp.create_barcode(payload, zxingcpp.BarcodeFormat.QRCode).to_image(scale=5)
    )
    f = frame.copy()
    f[40 : 40 + qr.shape[0], 60 : 60 + qr.shape[1]] = cv2.cvtColor(qr, cv2.COLOR_GRAY2BGR)
    return f


def test_qr_code_on_a_video_frame_is_decoded_and_downscaled_too() -> None:
    f = _with_qr(frames("pattern-hd-no-bar.mp4", count=1)[0], "https://spam.example/promo")
    for img in (f, cv2.resize(f, (f.shape[1] // 2, f.shape[0] // 2))):
        (qr,) = text.find_codes(img)
        assert (qr.kind, qr.category, qr.text) == (
            "qr",
            "spam.qr_code",
            "https://spam.example/promo",
        )
        assert qr.box and qr.box[0] < 0.2
    assert text.find_codes(frames("chair-orig-22-sd-bar.mp4", count=1)[0]) == []


@pytest.mark.parametrize(
    ("line", "cats"),
    [
        ("visit www.buy-now.example today", {"spam.url"}),
        ("call +1 555 123 4567", {"spam.phone_number"}),
        ("DM me on telegram", {"spam.solicitation", "spam.messenger_handle"}),
        ("cheap skins here", {"spam.keyword"}),
        ("good game everyone", set()),
    ],
)
def test_text_rules(line: str, cats: set[str]) -> None:
    found = text.rules(line, ["cheap skins"])
    assert {f.category for f in found if f.category} == cats


@pytest.fixture(scope="module")
def ocr() -> text.Ocr:
    return text.Ocr()


def test_ocr_finds_spam_text_rendered_on_a_real_frame(ocr: text.Ocr) -> None:
    f = frames("pattern-hd-no-bar.mp4", count=1)[0].copy()
    f = cv2.resize(f, (854, 480))
    cv2.rectangle(f, (20, 150), (820, 290), (0, 0, 0), -1)
    cv2.putText(
        f, "DM me on telegram", (40, 200), cv2.FONT_HERSHEY_SIMPLEX, 1.3, (255, 255, 255), 3
    )
    cv2.putText(
        f, "www.buy-now.example", (40, 265), cv2.FONT_HERSHEY_SIMPLEX, 1.3, (255, 255, 255), 3
    )
    found = text.text_findings(f, ocr, [], 0.5)
    cats = {x.category for x in found}
    assert {"spam.solicitation", "spam.url"} <= cats, found
    clean = text.text_findings(
        cv2.resize(frames("chair-orig-22-sd-bar.mp4", count=1)[0], (854, 480)), ocr, [], 0.5
    )
    assert not [x for x in clean if x.category], clean


def _caption(line: str, background: int = 40) -> np.ndarray:
    img = np.full((384, 683, 3), background, np.uint8)
    cv2.rectangle(img, (0, 300), (683, 350), (10, 10, 10), -1)
    cv2.putText(img, line, (20, 335), cv2.FONT_HERSHEY_DUPLEX, 1.0, (255, 255, 255), 2)
    return img


BOX = (20 / 683, 305 / 384, 420 / 683, 345 / 384)


def _gate(every: int = 3, reuse: int = 4) -> TextGate:
    return TextGate(every=every, reuse_distance=reuse, box_change=12.0)


def _found(
    line: str,
) -> tuple[list[records.TextFinding], dict[tuple[float, float, float, float], str]]:
    return text.rules(line, [], BOX), {BOX: line}


def test_text_gate_reads_first_and_reuses_while_the_picture_is_the_same() -> None:
    gate = _gate()
    base, near, far = (
        bytes(32).hex(),
        (bytes([0b111]) + bytes(31)).hex(),
        (b"\xff\x0f" + bytes(30)).hex(),
    )
    img = _caption("DM me on telegram")
    assert gate.plan(("t1", "s"), base, img) == ("read", None)
    found, lines = _found("DM me on telegram")
    gate.remember(("t1", "s"), base, img, found, lines)
    assert gate.plan(("t1", "s"), near, img) == ("reuse", found)  # 3 bits: the same picture
    assert gate.plan(("t2", "s"), base, img) == ("read", None)  # another tenant's stream
    assert gate.plan(("t1", "other"), base, img) == ("read", None)
    # a changed picture whose caption box is pixel-identical: reused without reading anything
    assert gate.plan(("t1", "s"), far, img, recognise=_never) == ("reuse", found)


def _never(_: np.ndarray) -> str:
    raise AssertionError("the recogniser ran although the box did not change")


def test_text_gate_tells_a_new_picture_under_the_same_words_from_new_words() -> None:
    gate = _gate(every=100)
    found, lines = _found("DM me on telegram")
    gate.remember(("t", "s"), None, _caption("DM me on telegram"), found, lines)
    moved = _caption("DM me on telegram", background=200)  # the picture behind changed
    moved[300:350] = 255 - moved[300:350]  # and the banner's pixels with it
    seen: list[str] = []

    def same(crop: np.ndarray) -> str:
        seen.append("same")
        return "DM me on telegrarn"  # the recogniser wavers on a letter: still the same words

    assert gate.plan(("t", "s"), None, moved, recognise=same) == ("reuse", found)
    assert seen == ["same"]
    assert gate.plan(("t", "s"), None, moved, recognise=_never)[0] == "reuse"  # compared anew
    changed = _caption("www.buy-now.example")
    assert gate.plan(("t", "s"), None, changed, recognise=lambda c: "www.buy-now.example") == (
        "read", None)  # fmt: skip
    assert gate.plan(("t", "s"), None, changed) == ("read", None)  # no recogniser: read


def test_text_gate_probes_for_new_text_every_n_samples_when_none_was_found() -> None:
    gate = _gate(every=3)
    empty = _caption("")
    gate.remember(("t", "s"), None, empty, [], {})
    probes: list[int] = []

    def nothing(_: np.ndarray) -> list[tuple[float, float, float, float]]:
        probes.append(1)
        return []

    plans = [gate.plan(("t", "s"), None, empty, detect=nothing)[0] for _ in range(6)]
    assert plans == ["skip"] * 6 and len(probes) == 2  # every 3rd sample, nothing found
    for _ in range(2):  # not yet due: the probe does not run
        assert gate.plan(("t", "s"), None, empty, detect=lambda _: [BOX])[0] == "skip"
    assert gate.plan(("t", "s"), None, empty, detect=lambda _: [BOX]) == ("read", None)


def test_same_words_ignores_case_spaces_and_a_wavering_letter() -> None:
    assert same_words("DM me on telegram", "dm  meon TELEGRAM")
    assert same_words("www.cheap-coins.example", "www.cheap-coirs.example")
    assert not same_words("www.buy-now.example", "DM me on telegram")
    assert not same_words("", "DM me")
