"""On-screen text and codes: QR/barcodes (zxing-cpp), OCR (PP-OCR via rapidocr), spam rules."""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

import numpy as np
import zxingcpp

from framewatch import records
from framewatch.settings.scoring import ScoringSettings

log = logging.getLogger(__name__)
QR_MODEL = "zxing-cpp@3"
OCR_MODEL = "pp-ocrv4-rapidocr@1.4.4"

URL = re.compile(
    r"\b(?:https?://|www\.)\S+|\b[a-z0-9-]+\.(?:com|net|org|io|gg|tv|ru|xyz|me|link|shop|live|example)\b\S*",
    re.I,
)
PHONE = re.compile(r"(?:\+\d{1,3}[\s.-]?)?(?:\(?\d{2,4}\)?[\s.-]?){2,4}\d{2,4}")
HANDLE = re.compile(
    r"(?:@[a-z0-9_.]{3,}|\b(?:telegram|tg|whatsapp|snap(?:chat)?|kik|discord|wechat|insta(?:gram)?)\b)",
    re.I,
)
SOLICIT = re.compile(
    r"\b(?:dm\s*me|message\s*me|text\s*me|add\s*me|contact\s*me|link\s*in\s*bio|cash\s*app|"
    r"free\s*(?:coins|gift|crypto)|send\s*me)\b",
    re.I,
)


def _box(pts: Any, w: int, h: int) -> tuple[float, float, float, float]:
    a = np.asarray(pts, dtype=np.float32).reshape(-1, 2)
    x0, y0 = a.min(axis=0)
    x1, y1 = a.max(axis=0)
    return (float(np.clip(x0 / w, 0, 1)), float(np.clip(y0 / h, 0, 1)),
            float(np.clip(x1 / w, 0, 1)), float(np.clip(y1 / h, 0, 1)))  # fmt: skip


def find_codes(bgr: np.ndarray) -> list[records.TextFinding]:
    """QR codes -> spam.qr_code, 1-D/other barcodes -> spam.barcode, with the payload."""
    h, w = bgr.shape[:2]
    out = []
    for r in zxingcpp.read_barcodes(bgr):
        qr = "QR" in str(r.format) or "QR" in str(getattr(r, "symbology", ""))
        p = r.position
        pts = [(p.top_left.x, p.top_left.y), (p.bottom_right.x, p.bottom_right.y),
               (p.top_right.x, p.top_right.y), (p.bottom_left.x, p.bottom_left.y)]  # fmt: skip
        out.append(records.TextFinding(kind="qr" if qr else "barcode", text=r.text[:2000],
                                       category="spam.qr_code" if qr else "spam.barcode",
                                       box=_box(pts, w, h)))  # fmt: skip
    return out


def rules(
    line: str, keywords: list[str], box: tuple[float, float, float, float] | None = None
) -> list[records.TextFinding]:
    """Spam findings of one line of on-screen text."""
    out: list[records.TextFinding] = []

    def add(kind: str, text: str, cat: str) -> None:
        out.append(records.TextFinding(kind=kind, text=text, category=cat, box=box))  # type: ignore[arg-type]

    for m in URL.finditer(line):
        add("url", m.group(0), "spam.url")
    for m in PHONE.finditer(line):
        if sum(c.isdigit() for c in m.group(0)) >= 7:
            add("phone", m.group(0).strip(), "spam.phone_number")
    for m in HANDLE.finditer(line):
        add("handle", m.group(0), "spam.messenger_handle")
    for m in SOLICIT.finditer(line):
        add("solicitation", m.group(0), "spam.solicitation")
    low = line.lower()
    for k in keywords:
        if k.lower() in low:
            add("keyword", k, "spam.keyword")
    if not out:
        add("text", line, None)  # type: ignore[arg-type]
    return out


class Ocr:
    """PP-OCRv4 det/rec ONNX models shipped by rapidocr-onnxruntime, created once.

    rapidocr imports `onnxruntime`, which onnxruntime-gpu provides; it is installed with
    --no-deps so plain onnxruntime never lands beside the GPU build.
    """

    def __init__(self, det_side: int = 736, det_limit: str = "min", probe_side: int = 320) -> None:
        """``det_limit`` "min": the detector sees the frame scaled so its short side is
        ``det_side`` (rapidocr's default, 736: a 384-px thumbnail is upscaled ~1.9x); "max":
        its long side at most ``det_side`` (never upscaled). ``probe_side``: the long side of
        the cheap is-there-text test (:meth:`detect`)."""
        from rapidocr_onnxruntime import RapidOCR

        self._engine = RapidOCR(det_limit_side_len=det_side, det_limit_type=det_limit)
        self._probe = RapidOCR(det_limit_side_len=probe_side, det_limit_type="max")
        self._lock = threading.Lock()

    def lines(self, bgr: np.ndarray) -> list[tuple[str, float, tuple[float, float, float, float]]]:
        h, w = bgr.shape[:2]
        with self._lock:
            result, _ = self._engine(bgr)
        return [(text, float(conf), _box(pts, w, h)) for pts, text, conf in (result or [])]

    @classmethod
    def from_settings(cls, sc: ScoringSettings) -> Ocr:
        return cls(sc.ocr_det_side, sc.ocr_det_limit, sc.ocr_probe_side)

    def detect(self, bgr: np.ndarray) -> list[tuple[float, float, float, float]]:
        """Boxes that may hold text, from the detector alone on a small copy: a cheap test."""
        h, w = bgr.shape[:2]
        with self._lock:
            result, _ = self._probe(bgr, use_cls=False, use_rec=False)
        return [_box(pts, w, h) for pts in (result or [])]

    def recognise(self, crop: np.ndarray) -> str:
        """The text of one line's crop, without detection (a few times cheaper than a read)."""
        with self._lock:
            result, _ = self._engine(crop, use_det=False, use_cls=False)
        return str(result[0][0]) if result else ""


def read_lines(
    bgr: np.ndarray, ocr: Ocr | None, keywords: list[str], min_conf: float
) -> tuple[list[records.TextFinding], dict[tuple[float, float, float, float], str]]:
    """Codes and text findings of a frame, and every OCR line's text by box (also the lines
    under ``min_conf``, which make no finding)."""
    found = find_codes(bgr)
    lines: dict[tuple[float, float, float, float], str] = {}
    if ocr is not None:
        for text, conf, box in ocr.lines(bgr):
            lines[box] = text
            if conf >= min_conf:
                found.extend(rules(text, keywords, box))
    return found, lines


def text_findings(
    bgr: np.ndarray, ocr: Ocr | None, keywords: list[str], min_conf: float
) -> list[records.TextFinding]:
    return read_lines(bgr, ocr, keywords, min_conf)[0]


def spam_scores(findings: list[records.TextFinding], score: float) -> dict[str, float]:
    return {f.category: score for f in findings if f.category}
