"""QR codes and spam text rendered onto real video frames are found."""

from __future__ import annotations

import functools

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


def _first_plan(gate: TextGate, key: tuple[str, str]) -> tuple[str, None]:
    """A new stream's first sample: read, or skipped until its phase comes round."""
    return ("read", None) if gate.phase(key) == 0 else ("skip", None)


def test_text_gate_reads_first_and_reuses_while_the_picture_is_the_same() -> None:
    gate = _gate(every=1000)  # no periodic read in this test
    base, near, far = (
        bytes(32).hex(),
        (bytes([0b111]) + bytes(31)).hex(),
        (b"\xff\x0f" + bytes(30)).hex(),
    )
    img = _caption("DM me on telegram")
    found, lines = _found("DM me on telegram")
    gate.remember(("t1", "s"), base, img, found, lines)
    assert gate.plan(("t1", "s"), near, img) == ("reuse", found)  # 3 bits: the same picture
    # another tenant's stream, another stream: never this one's findings
    assert gate.plan(("t2", "s"), base, img) == _first_plan(gate, ("t2", "s"))
    assert gate.plan(("t1", "other"), base, img) == _first_plan(gate, ("t1", "other"))
    # a changed picture whose caption box is pixel-identical: reused without reading anything
    assert gate.plan(("t1", "s"), far, img, recognise=_never) == ("reuse", found)


def _never(_: np.ndarray) -> str:
    raise AssertionError("the recogniser ran although the box did not change")


def test_text_gate_tells_a_new_picture_under_the_same_words_from_new_words() -> None:
    gate = _gate(every=100)
    found, lines = _found("DM me on telegram")
    gate.remember(("t", "s"), None, _caption("DM me on telegram"), found, lines)
    moved = _caption("DM me on telegram", background=200)  # the picture behind changed
    moved[300:350] = 40  # and the banner, with the same words redrawn in another typeface
    cv2.putText(moved, "DM me on telegram", (20, 335), cv2.FONT_HERSHEY_TRIPLEX, 0.9,
                (255, 255, 255), 2)  # fmt: skip
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


def test_text_gate_reads_every_n_samples_when_none_was_found() -> None:
    gate = _gate(every=3)
    empty, key = _caption(""), ("t", "s")
    gate.remember(key, None, empty, [], {})  # a read found nothing
    plans = [gate.plan(key, None, empty)[0] for _ in range(3)]
    assert plans == ["skip", "skip", "read"]  # new text anywhere is looked for every 3rd sample


def test_streams_starting_together_read_on_different_samples() -> None:
    """30 streams going live at once (a scorer restart) spread their reads over the samples
    instead of all reading on the same one, from their first sample on; each is first read
    within its first 3 samples and then every 3rd."""
    gate = _gate(every=3)
    empty = _caption("")
    keys = [("t", f"s{i}") for i in range(30)]
    reads_at: dict[tuple[str, str], list[int]] = {k: [] for k in keys}
    reads_per_sample = []
    for n in range(9):
        reads = 0
        for k in keys:
            if gate.plan(k, None, empty)[0] == "read":
                reads += 1
                reads_at[k].append(n)
                gate.remember(k, None, empty, [], {})
        reads_per_sample.append(reads)
    assert max(reads_per_sample) <= 20 and min(reads_per_sample) >= 4, reads_per_sample
    for k, at in reads_at.items():
        assert at[0] <= 2 and at == list(range(at[0], 9, 3)), (k, at)


def _outlined(line: str, picture: int) -> np.ndarray:
    """A streamer's caption: white letters with a dark outline straight over the picture."""
    rng = np.random.default_rng(picture)
    img = cv2.GaussianBlur(rng.integers(0, 255, (384, 683, 3), dtype=np.uint8), (0, 0), 6)
    cv2.putText(img, line, (20, 335), cv2.FONT_HERSHEY_DUPLEX, 1.0, (0, 0, 0), 7)
    cv2.putText(img, line, (20, 335), cv2.FONT_HERSHEY_DUPLEX, 1.0, (255, 255, 255), 2)
    return img


def test_an_outlined_caption_over_a_moving_picture_is_not_read_again() -> None:
    gate = _gate(every=100)
    found, lines = _found("DM me on telegram")
    gate.remember(("t", "s"), None, _outlined("DM me on telegram", picture=1), found, lines)
    for picture in (2, 3, 4):  # the picture changes, the letters' pixels stay
        moved = _outlined("DM me on telegram", picture)
        assert gate.plan(("t", "s"), None, moved, recognise=_never) == ("reuse", found)
        assert gate.known(("t", "s"), moved) == {BOX: "DM me on telegram"}
    other = _outlined("www.buy-now.example", picture=5)
    assert gate.plan(("t", "s"), None, other, recognise=lambda c: "www.buy-now.example") == (
        "read", None)  # fmt: skip
    assert gate.known(("t", "s"), other) == {}  # another caption in the box: read it anew
    gone = _outlined("", picture=6)
    assert gate.plan(("t", "s"), None, gone, recognise=lambda c: "") == ("read", None)


@functools.cache
def _pictures() -> list[np.ndarray]:
    """A real moving picture in grey: the chair video, a sample a second."""
    return [cv2.cvtColor(cv2.cvtColor(cv2.resize(f, (683, 384)), cv2.COLOR_BGR2GRAY),
                         cv2.COLOR_GRAY2BGR)
            for f in frames("chair-orig-22-sd-bar.mp4", every=30, count=8)]  # fmt: skip


def _watermarked(word: str, picture: int) -> np.ndarray:
    """A channel's watermark: white letters at 60 % over a moving grey picture."""
    img = _pictures()[picture]
    marked = img.copy()
    cv2.putText(marked, word, (560, 360), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2)
    return cv2.addWeighted(marked, 0.6, img, 0.4, 0)


WM_BOX = (555 / 683, 335 / 384, 665 / 683, 366 / 384)


def test_a_translucent_watermark_over_a_moving_picture_is_not_read_again() -> None:
    """Its letters take their grey from the picture behind, so their pixels move with it; the
    shape of its strokes does not. Another word in its place, or none, is read."""
    gate = _gate(every=100)
    found, lines = text.rules("LIVE3", [], WM_BOX), {WM_BOX: "LIVE3"}
    gate.remember(("t", "s"), None, _watermarked("LIVE3", picture=1), found, lines)
    for picture in range(2, 7):
        moved = _watermarked("LIVE3", picture)
        assert gate.plan(("t", "s"), None, moved, recognise=_never) == ("reuse", found)
        assert gate.known(("t", "s"), moved) == {WM_BOX: "LIVE3"}
    for other in ("DM ME", "x.com", ""):
        changed = _watermarked(other, picture=7)
        assert gate.known(("t", "s"), changed) == {}, other
        assert gate.plan(("t", "s"), None, changed, recognise=lambda c, o=other: o) == (
            "read", None)  # fmt: skip


def test_a_read_recognises_only_new_lines(live_ocr: text.Ocr) -> None:
    """The detector runs on the whole frame, the recogniser only on lines not read before."""
    gate = _gate(every=3)
    key = ("t", "s")
    first = _caption("DM me on telegram")
    found, lines = text.read_lines(first, live_ocr, [], 0.5, gate.known(key, first))
    assert "spam.solicitation" in {f.category for f in found}, found
    gate.remember(key, None, first, found, lines)
    both = first.copy()
    cv2.putText(both, "www.buy-now.example", (20, 100), cv2.FONT_HERSHEY_DUPLEX, 1.0,
                (255, 255, 255), 2)  # fmt: skip
    known = gate.known(key, both)
    assert list(known.values()) == [next(iter(lines.values()))]
    before = live_ocr.counts["recognitions"]
    found, lines = text.read_lines(both, live_ocr, [], 0.5, known)
    assert live_ocr.counts["recognitions"] - before == 1  # the new line only
    assert {"spam.solicitation", "spam.url"} <= {f.category for f in found}, found


@pytest.fixture(scope="module")
def live_ocr() -> text.Ocr:
    return text.Ocr(det_side=416, threads=1)


def test_the_live_reader_finds_a_caption_where_it_is_on_the_full_frame(live_ocr: text.Ocr) -> None:
    """The detector sees a shrunk copy; the boxes it reports are the full frame's."""
    f = _caption("www.buy-now.example")
    ((words, _, box),) = live_ocr.lines(f)
    assert abs(box[0] - 20 / 683) < 0.02 and abs(box[3] - 345 / 384) < 0.03, box
    assert words.replace(" ", "") == "www.buy-now.example"


def test_a_short_word_is_recognised_at_its_own_width(live_ocr: text.Ocr) -> None:
    """A channel watermark ("LIVE3") is read from a crop of its own width, not padded to
    rapidocr's 320 px floor (three times the recogniser's work for the same word)."""
    widths: list[int] = []
    session = live_ocr._engine.text_rec.session
    run = session.__call__

    class Spy:
        def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
            widths.append(batch.shape[-1])
            return run(batch)

        def __getattr__(self, name: str) -> object:
            return getattr(session, name)

    f = np.full((384, 683, 3), 40, np.uint8)
    cv2.putText(f, "LIVE3", (560, 360), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2)
    live_ocr._engine.text_rec.session = Spy()
    try:
        ((words, _, _),) = live_ocr.lines(f)
    finally:
        live_ocr._engine.text_rec.session = session
    assert same_words(words, "LIVE3"), words
    assert widths and max(widths) < 200, widths


def test_same_words_ignores_case_spaces_and_a_wavering_letter() -> None:
    assert same_words("DM me on telegram", "dm  meon TELEGRAM")
    assert same_words("www.cheap-coins.example", "www.cheap-coirs.example")
    assert not same_words("www.buy-now.example", "DM me on telegram")
    assert not same_words("", "DM me")
