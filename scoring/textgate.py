"""When to read on-screen text on a live stream, and what to report when it is not read.

OCR costs 10-50x a classifier on CPU, and on-screen text (a caption, a handle, a URL banner)
persists for many samples. So per (tenant, stream) the gate keeps the last read: its PDQ, its
findings and a small signature of every box text was found in. For each new sample:

1. the picture is the same (PDQ within ``reuse_distance``): report the last findings;
2. a box that held text changed (the caption changed or went): read now;
3. ``every`` samples since the last read or test: a cheap test (the text detector alone, on a
   small copy) looks for text outside the known boxes; if there is any, read;
4. otherwise the text boxes still hold what was read: report it (nothing found: not read).

Rule 3 bounds how late new text is seen; rule 2 makes a change to known text immediate. Is a box
unchanged? First its grey crop, shrunk to a fixed size: a mean absolute difference up to
``box_change`` (0-255) says yes at no cost (a caption on a banner). Text drawn over a moving
picture changes the crop although the words stay; then the recogniser reads that one crop
(no detection, a few times cheaper than a read) and the words decide.
"""

from __future__ import annotations

import difflib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from framewatch import records
from scoring import pdq

Plan = Literal["read", "reuse", "skip"]
SIG_SIZE = (64, 16)  # width x height of a box signature: enough to see a changed word


def signature(grey: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
    """The box's crop of a grey frame at SIG_SIZE (float32), or None for an empty box."""
    h, w = grey.shape[:2]
    x0, y0, x1, y1 = box
    a, b = int(x0 * w), int(y0 * h)
    c, d = max(a + 1, int(np.ceil(x1 * w))), max(b + 1, int(np.ceil(y1 * h)))
    crop = grey[b:d, a:c]
    if crop.size == 0:
        return None
    return cv2.resize(crop, SIG_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)


def crop(bgr: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The box (0..1 coordinates) of a frame, widened a little as the detector's boxes are."""
    h, w = bgr.shape[:2]
    x0, y0, x1, y1 = box
    pad = 0.25 * (y1 - y0) * h
    a, b = max(0, int(x0 * w - pad)), max(0, int(y0 * h - pad))
    c, d = min(w, int(np.ceil(x1 * w + pad))), min(h, int(np.ceil(y1 * h + pad)))
    return bgr[b:d, a:c]


def same_words(a: str, b: str, min_ratio: float = 0.8) -> bool:
    """The same line read twice: the recogniser wavers on a letter or two at an edge
    ("cheap-coin" / "cheap-coil"), so near-equal counts as equal (case and spaces ignored)."""
    x, y = "".join(a.lower().split()), "".join(b.lower().split())
    return x == y or (bool(x) and difflib.SequenceMatcher(None, x, y).ratio() >= min_ratio)


def grey(bgr: np.ndarray) -> np.ndarray:
    return bgr if bgr.ndim == 2 else cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


Box = tuple[float, float, float, float]


@dataclass
class _Last:
    words: np.ndarray | None  # PDQ of the frame read, as words
    found: list[records.TextFinding]
    boxes: list[Box]  # every box that held text or a code
    sigs: list[np.ndarray]  # their signatures
    lines: list[str | None]  # the words read in each (None: a code)
    seen: list[Box]  # every box the detector found, findings or not (not new text later)
    since: int = 0  # samples since that read


class TextGate:
    """Per stream: read, reuse the last findings, or skip. The least recently seen streams are
    forgotten beyond ``max_streams`` (their next sample is read)."""

    def __init__(
        self, every: int, reuse_distance: int, box_change: float, max_streams: int = 50_000
    ) -> None:
        self.every = max(every, 1)
        self.reuse_distance = reuse_distance
        self.box_change = box_change
        self.max_streams = max_streams
        self._last: OrderedDict[tuple[str, str], _Last] = OrderedDict()

    def plan(
        self,
        key: tuple[str, str],
        pdq_hex: str | None,
        bgr: np.ndarray | None,
        recognise: Callable[[np.ndarray], str] | None = None,
        detect: Callable[[np.ndarray], list[Box]] | None = None,
    ) -> tuple[Plan, list[records.TextFinding] | None]:
        """What to do with this sample; with "reuse", the findings to report. ``recognise``
        reads one crop (the OCR's recogniser) to tell a changed box from a changed picture;
        ``detect`` is the cheap is-there-text test (without it, rule 3 always reads)."""
        last = self._last.get(key)
        if last is None:
            return "read", None
        self._last.move_to_end(key)
        last.since += 1
        if (
            self.reuse_distance >= 0
            and pdq_hex
            and last.words is not None
            and int(pdq.distances(last.words, pdq.to_words([pdq_hex])[0])[0]) <= self.reuse_distance
        ):
            return "reuse", last.found
        if last.boxes and (bgr is None or self._changed(last, bgr, recognise)):
            return "read", None
        if last.since >= self.every:
            if bgr is None or detect is None or _new_text(detect(bgr), last.seen):
                return "read", None
            last.since = 0
        return ("reuse", last.found) if last.boxes else ("skip", None)

    def _changed(
        self, last: _Last, bgr: np.ndarray, recognise: Callable[[np.ndarray], str] | None
    ) -> bool:
        g = grey(bgr)
        for i, box in enumerate(last.boxes):
            now = signature(g, box)
            if now is None:
                return True
            if float(np.abs(now - last.sigs[i]).mean()) <= self.box_change:
                continue
            line = last.lines[i]
            if line is None or recognise is None or not same_words(recognise(crop(bgr, box)), line):
                return True
            last.sigs[i] = now  # same words over a new picture: compare with this one next
        return False

    def remember(
        self,
        key: tuple[str, str],
        pdq_hex: str | None,
        bgr: np.ndarray,
        found: list[records.TextFinding],
        lines: dict[Box, str] | None = None,
    ) -> None:
        """What a read of this sample found, and each OCR line's words by box."""
        g = grey(bgr)
        boxes = _boxes(found)
        sigs = [signature(g, b) for b in boxes]
        kept = [(b, s) for b, s in zip(boxes, sigs, strict=True) if s is not None]
        words = pdq.to_words([pdq_hex]) if pdq_hex else None
        self._last[key] = _Last(
            words, found, [b for b, _ in kept], [s for _, s in kept],
            [(lines or {}).get(b) for b, _ in kept], [*boxes, *(lines or {})],
        )  # fmt: skip
        self._last.move_to_end(key)
        while len(self._last) > self.max_streams:
            self._last.popitem(last=False)


def _boxes(found: list[records.TextFinding]) -> list[Box]:
    """Distinct boxes of the findings, in order (one OCR line gives several findings)."""
    out: list[Box] = []
    for f in found:
        if f.box is not None and f.box not in out:
            out.append(f.box)
    return out


def _new_text(probed: list[Box], known: list[Box]) -> bool:
    """A probed box that overlaps no known box by half of its own area is new text."""
    for p in probed:
        area = max((p[2] - p[0]) * (p[3] - p[1]), 1e-9)
        if all(_overlap(p, k) < 0.5 * area for k in known):
            return True
    return False


def _overlap(a: Box, b: Box) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
