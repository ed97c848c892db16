"""On-screen text and codes: QR/barcodes (zxing-cpp), OCR (PP-OCR via rapidocr), spam rules."""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
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


Box = tuple[float, float, float, float]
REC_HEIGHT = 48  # PP-OCRv4's recogniser input height
REC_MIN_WIDTH = 64  # lines narrower than this are padded to it (rapidocr's own floor is 320)


class Ocr:
    """PP-OCRv4 det/rec ONNX models shipped by rapidocr-onnxruntime, created once.

    rapidocr imports `onnxruntime`, which onnxruntime-gpu provides; it is installed with
    --no-deps so plain onnxruntime never lands beside the GPU build. Its sessions are replaced
    by ones with the scorer's options (scoring.model.session_options): rapidocr's own turn the
    memory arena off and let one thread per core spin, twice the CPU for the same read.

    The detector sees the frame shrunk so its long side is at most ``det_side`` (rapidocr's
    "max" limit never shrinks below 960, so the frame is resized here); each line is then
    recognised from the full-size frame. No angle classifier: overlays are upright.
    """

    def __init__(self, det_side: int = 960, threads: int = 1) -> None:
        from rapidocr_onnxruntime import RapidOCR

        from scoring.model import session_options
        from scoring.onnxprep import prepared

        self.det_side = det_side
        # limit "max": rapidocr shrinks nothing under 960 px (the frame arrives shrunk here)
        # and, unlike its default "min", never enlarges a small one
        self._engine = RapidOCR(use_cls=False, det_limit_type="max")
        opts = session_options(threads, spin_wait=False)
        for part in (self._engine.text_det.infer, self._engine.text_rec.session):
            path = prepared(part.session._model_path)  # as every model loads (scoring/onnxprep.py)
            part.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        # rapidocr pads every line to at least 320 px wide (PaddleOCR's batch shape); the
        # recogniser takes any width, and a short word ("LIVE3", a handle) padded to 320 costs
        # about 3x what its own width does, for the same words
        self._engine.text_rec.rec_image_shape = [3, REC_HEIGHT, REC_MIN_WIDTH]
        self._lock = threading.Lock()
        self.counts = {"detections": 0, "recognitions": 0}  # for benchmarks and tests

    @classmethod
    def from_settings(cls, sc: ScoringSettings, live: bool = False) -> Ocr:
        """``live``: the stream scorer's reader (ingest's thumbnails, ``ocr_live_det_side``);
        otherwise /v1/check's (any image, ``ocr_det_side``)."""
        return cls(sc.ocr_live_det_side if live else sc.ocr_det_side, sc.ocr_threads)

    def polygons(self, bgr: np.ndarray) -> list[np.ndarray]:
        """Every text line's 4-point polygon, in ``bgr``'s pixels."""
        h, w = bgr.shape[:2]
        f = min(1.0, self.det_side / max(h, w))
        small = bgr
        if f < 1.0:
            small = cv2.resize(bgr, (max(1, round(w * f)), max(1, round(h * f))),
                               interpolation=cv2.INTER_AREA)  # fmt: skip
        with self._lock:
            self.counts["detections"] += 1
            result, _ = self._engine(small, use_cls=False, use_rec=False)
        sx, sy = w / small.shape[1], h / small.shape[0]
        scale = np.array([sx, sy], np.float32)
        return [np.asarray(p, np.float32).reshape(4, 2) * scale for p in (result or [])]

    def recognise_polygons(
        self, bgr: np.ndarray, polys: list[np.ndarray]
    ) -> list[tuple[str, float]]:
        """Text and confidence of each polygon's line, read from ``bgr`` in one batch."""
        if not polys:
            return []
        crops = self._engine.get_crop_img_list(bgr, polys)
        with self._lock:
            self.counts["recognitions"] += len(crops)
            rec, _ = self._engine.text_rec(crops)
        return [(str(r[0]), float(r[1])) for r in rec]

    def recognise(self, crop: np.ndarray) -> str:
        """The text of one line's crop, without detection (a few times cheaper than a read)."""
        h, w = crop.shape[:2]
        whole = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
        return self.recognise_polygons(crop, [whole])[0][0]

    def lines(
        self, bgr: np.ndarray, known: dict[Box, str] | None = None
    ) -> list[tuple[str, float, Box]]:
        """Every line of text: (words, confidence, box). A line whose box matches one of
        ``known`` (boxes whose words are already read and whose pixels have not changed; see
        scoring/textgate.py) keeps those words and is not recognised again."""
        h, w = bgr.shape[:2]
        known = known or {}
        out: list[tuple[str, float, Box]] = []
        todo: list[tuple[np.ndarray, Box]] = []
        for p in self.polygons(bgr):
            box = _box(p, w, h)
            same = next((k for k in known if _same_box(box, k)), None)
            if same is not None:
                out.append((known[same], 1.0, same))
            else:
                todo.append((p, box))
        read = self.recognise_polygons(bgr, [p for p, _ in todo])
        out += [(words, conf, box) for (words, conf), (_, box) in zip(read, todo, strict=True)]
        return out


def _same_box(a: Box, b: Box) -> bool:
    """The same line's box: each covers at least half of the other."""
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(
        0.0, min(a[3], b[3]) - max(a[1], b[1])
    )
    area_a = max((a[2] - a[0]) * (a[3] - a[1]), 1e-9)
    area_b = max((b[2] - b[0]) * (b[3] - b[1]), 1e-9)
    return inter >= 0.5 * area_a and inter >= 0.5 * area_b


def read_lines(
    bgr: np.ndarray,
    ocr: Ocr | None,
    keywords: list[str],
    min_conf: float,
    known: dict[Box, str] | None = None,
) -> tuple[list[records.TextFinding], dict[Box, str]]:
    """Codes and text findings of a frame, and every OCR line's text by box (also the lines
    under ``min_conf``, which make no finding). ``known``: see :meth:`Ocr.lines`."""
    found = find_codes(bgr)
    lines: dict[Box, str] = {}
    if ocr is not None:
        for words, conf, box in ocr.lines(bgr, known):
            lines[box] = words
            if conf >= min_conf:
                found.extend(rules(words, keywords, box))
    return found, lines


def text_findings(
    bgr: np.ndarray, ocr: Ocr | None, keywords: list[str], min_conf: float
) -> list[records.TextFinding]:
    return read_lines(bgr, ocr, keywords, min_conf)[0]


def spam_scores(findings: list[records.TextFinding], score: float) -> dict[str, float]:
    return {f.category: score for f in findings if f.category}
