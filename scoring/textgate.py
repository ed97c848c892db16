"""When to read on-screen text on a live stream, and what to report when it is not read.

OCR costs 10-50x a classifier on CPU, and on-screen text (a caption, a handle, a URL banner)
persists for many samples. So per (tenant, stream) the gate keeps the last read: its PDQ, its
findings and a small signature of every box text was found in. For each new sample:

0. a new stream is first read on one of its first ``every`` samples, at its own phase
   (:meth:`TextGate.phase`), so streams starting together do not all read at once;
1. the picture is the same (PDQ within ``reuse_distance``): report the last findings;
2. a box that held text changed (the caption changed or went): read now;
3. ``every`` samples since the last read: read (new text may have appeared anywhere);
4. otherwise the text boxes still hold what was read: report it (nothing found: not read).

A read is incremental: the detector runs on a small copy of the frame (the cheap part), and
only lines in boxes that are new or changed go to the recogniser; a box that still holds the
words read before keeps them (:meth:`TextGate.known`). Rule 3 bounds how late new text is
seen; rule 2 makes a change to known text immediate. Is a box unchanged? First its grey crop
(:func:`signature`): a mean absolute difference up to ``box_change`` (0-255) says yes at no cost
(a caption on a banner). Text drawn over a moving picture changes the crop although the words
stay; then the shape of its letters' strokes decides (:func:`same_strokes`, a translucent
watermark included), still at no cost; only when that moved too does the recogniser read that
one crop (no detection), and the words decide.
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
from scoring import cadence, pdq
from scoring.text import Box

Plan = Literal["read", "reuse", "skip"]
SIG_HEIGHT = 24  # a box signature's height (its width keeps the box's shape): letters stay legible
SIG_MAX_WIDTH = 512
MIN_STROKES = 0.05  # share of a signature's pixels that must be strokes to compare them
# Text over a moving picture changes its box's pixels although the words stay; the shape of its
# letters' strokes is what stays. A stroke is a thin structure standing out of what is behind
# it, measured by how opaque it is over that: a white overlay at 60 % reads 0.6 over any picture
# (a translucent watermark takes its letters' grey from the picture), a solid caption 1. Measured
# on a 60 % white watermark over the e2e streams' moving picture: the same word's strokes overlap
# 0.54-0.96 (intersection over union) from one sample to the next, another word's 0.14-0.29,
# none 0; one letter changed ("LIVE3" / "LIVE8", which the recogniser calls the same words too)
# 0.54-0.84. The letters' grey values, the test before this one, also counted a letterbox bar
# beside a watermark as letters, and a removed watermark as unchanged.
STROKE_KERNEL = 5  # a letter stroke of a 24-px-tall signature is thinner than this
STROKE_OPACITY = 0.35  # how opaque over its surroundings a pixel must be to count as a stroke
STROKE_OVERLAP = 0.5  # strokes overlapping at least this much are the same words


def signature(grey: np.ndarray, box: Box) -> np.ndarray | None:
    """The box's crop of a grey frame, SIG_HEIGHT tall (uint8), or None for an empty box."""
    h, w = grey.shape[:2]
    x0, y0, x1, y1 = box
    a, b = int(x0 * w), int(y0 * h)
    c, d = max(a + 1, int(np.ceil(x1 * w))), max(b + 1, int(np.ceil(y1 * h)))
    crop = grey[b:d, a:c]
    if crop.size == 0:
        return None
    width = min(SIG_MAX_WIDTH, max(1, round(crop.shape[1] * SIG_HEIGHT / crop.shape[0])))
    return cv2.resize(crop, (width, SIG_HEIGHT), interpolation=cv2.INTER_AREA)


def same_box_pixels(now: np.ndarray, then: np.ndarray, box_change: float) -> bool:
    """A box holds what it held: the whole crop is unchanged (mean difference up to
    ``box_change``), or, with the picture behind the text moving, its letters' strokes keep
    their shape (an overlay is drawn the same on every frame; new, changed or removed words
    move them)."""
    if now.shape != then.shape:  # the stream's frame size changed
        now = cv2.resize(now, then.shape[::-1], interpolation=cv2.INTER_AREA)
    if float(np.abs(now.astype(np.float32) - then.astype(np.float32)).mean()) <= box_change:
        return True
    return same_strokes(now, then)


def strokes(sig: np.ndarray) -> np.ndarray:
    """Where thin strokes stand out of their surroundings (bright or dark, whichever the box
    has more of), by how opaque they are over them: a white overlay at 60 % reads 0.6 over any
    picture, so the mask does not move with the picture behind it."""
    s = sig.astype(np.float32)
    kernel = np.ones((STROKE_KERNEL, STROKE_KERNEL), np.uint8)
    behind_bright = cv2.morphologyEx(sig, cv2.MORPH_OPEN, kernel).astype(np.float32)
    behind_dark = cv2.morphologyEx(sig, cv2.MORPH_CLOSE, kernel).astype(np.float32)
    bright = (s - behind_bright) / np.maximum(255.0 - behind_bright, 8.0) >= STROKE_OPACITY
    dark = (behind_dark - s) / np.maximum(behind_dark, 8.0) >= STROKE_OPACITY
    return bright if bright.sum() >= dark.sum() else dark


def same_strokes(now: np.ndarray, then: np.ndarray) -> bool:
    """The box's strokes have the shape they had (see STROKE_OVERLAP): a translucent overlay
    over a moving picture keeps its words."""
    was = strokes(then)
    if was.mean() < MIN_STROKES:
        return False
    is_now = strokes(now)  # same shape: same_box_pixels resized it
    union = int((was | is_now).sum())
    return union > 0 and (was & is_now).sum() / union >= STROKE_OVERLAP


def crop(bgr: np.ndarray, box: Box) -> np.ndarray:
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


@dataclass
class _Last:
    words: np.ndarray | None  # PDQ of the frame read, as words
    found: list[records.TextFinding]
    boxes: list[Box]  # every box that held text or a code
    sigs: list[np.ndarray]  # their signatures
    lines: list[str | None]  # the words read in each (None: a code)
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
    ) -> tuple[Plan, list[records.TextFinding] | None]:
        """What to do with this sample; with "reuse", the findings to report. ``recognise``
        reads one crop (the OCR's recogniser) to tell a changed box from a changed picture."""
        last = self._last.get(key)
        if last is None:
            wait = self.phase(key)
            if wait == 0:
                return "read", None
            # nothing read yet: its clock reaches `every` (rule 3) after `wait` more samples
            self._put(key, _Last(None, [], [], [], [], self.every - wait))
            return "skip", None
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
            return "read", None
        return ("reuse", last.found) if last.boxes else ("skip", None)

    def phase(self, key: tuple[str, str]) -> int:
        """Samples a new stream waits for its first read (0..every-1, the same for a stream on
        every scorer): streams that start together (a scorer restart, a burst of go-lives)
        then read on different samples, now and every ``every`` samples after, instead of all
        on the same one; text is still seen within ``every`` samples, as rule 3 promises."""
        return cadence.phase(*key, self.every)

    def known(self, key: tuple[str, str], bgr: np.ndarray) -> dict[Box, str]:
        """The boxes of the last read whose pixels still hold the words read there (a read
        of this sample keeps them instead of recognising them again)."""
        last = self._last.get(key)
        if last is None:
            return {}
        g = grey(bgr)
        out: dict[Box, str] = {}
        for box, sig, line in zip(last.boxes, last.sigs, last.lines, strict=True):
            now = signature(g, box)
            if line is not None and now is not None and self._same(now, sig):
                out[box] = line
        return out

    def _same(self, now: np.ndarray, then: np.ndarray) -> bool:
        return same_box_pixels(now, then, self.box_change)

    def _changed(
        self, last: _Last, bgr: np.ndarray, recognise: Callable[[np.ndarray], str] | None
    ) -> bool:
        g = grey(bgr)
        for i, box in enumerate(last.boxes):
            now = signature(g, box)
            if now is None:
                return True
            if self._same(now, last.sigs[i]):
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
        self._put(key, _Last(
            words, found, [b for b, _ in kept], [s for _, s in kept],
            [(lines or {}).get(b) for b, _ in kept],
        ))  # fmt: skip

    def _put(self, key: tuple[str, str], last: _Last) -> None:
        self._last[key] = last
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
