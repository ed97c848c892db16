"""QR codes and spam text rendered onto real video frames are found."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import zxingcpp

from scoring import text
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
