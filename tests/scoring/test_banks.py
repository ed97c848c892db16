"""Hash banks on the real Redis: edited copies of a banked video match, other videos don't."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from framewatch.settings import Settings
from scoring import hashfiles, pdq
from scoring.bank_cli import match_video
from scoring.banks import BankIndex, BankStore, Hit, StreamMatcher
from scoring.errors import BankError
from tests.scoring.conftest import VIDEOS

CHAIR = VIDEOS / "chair-orig-22-sd-bar.mp4"


def _grey(f: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def _crop(f: np.ndarray) -> np.ndarray:
    h, w = f.shape[:2]
    return f[h // 20 : h - h // 20, w // 20 : w - w // 20]


def _logo(f: np.ndarray) -> np.ndarray:
    f = f.copy()
    cv2.rectangle(f, (10, 10), (110, 50), (0, 0, 255), -1)
    cv2.putText(f, "LIVE", (18, 42), cv2.FONT_HERSHEY_SIMPLEX, 1, (255, 255, 255), 2)
    return f


def _scale(f: np.ndarray) -> np.ndarray:
    return cv2.resize(f, (f.shape[1] * 2 // 3 // 2 * 2, f.shape[0] * 2 // 3 // 2 * 2))


def _edited(
    src: Path, dst: Path, edit: Callable[[np.ndarray], np.ndarray], seconds: float = 6.0
) -> Path:
    """Re-encode src through `edit` (H.264, low bitrate) like a re-upload would."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        ins = inp.streams.video[0]
        vs = None
        for frame in inp.decode(ins):
            if frame.time is not None and frame.time > seconds:
                break
            img = edit(frame.to_ndarray(format="bgr24"))
            img = img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2]
            if vs is None:
                vs = out.add_stream("libx264", rate=25)
                vs.width, vs.height = img.shape[1], img.shape[0]
                vs.pix_fmt = "yuv420p"
                vs.bit_rate = 300_000
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(p)
        for p in vs.encode():  # type: ignore[union-attr]
            out.mux(p)
    return dst


@pytest.fixture
def store(settings: Settings) -> BankStore:
    s = BankStore(settings)
    s.create("csam", "red_line", "known_bad.csam_bank")
    return s


@pytest.mark.integration
def test_edited_copies_match_and_other_videos_do_not(store: BankStore, settings: Settings,
                                                     tmp_path: Path) -> None:  # fmt: skip
    from scoring.banks import video_hashes

    hashes = [h for _, h in video_hashes(CHAIR, 0.5, 50, settings.scoring.bank_crop_variants)]
    assert len(hashes) >= 5
    store.add("csam", "chair", hashes, "video")
    index = store.load()
    sc = settings.scoring
    for name, edit in [("reenc", lambda f: f), ("scaled", _scale), ("cropped", _crop),
                       ("logo", _logo), ("grey", _grey)]:  # fmt: skip
        copy = _edited(CHAIR, tmp_path / f"{name}.mp4", edit)
        rows = match_video(index, copy, 0.5, sc.video_window, sc.video_min_frames)
        assert [r["entry_id"] for r in rows if r["matched"]] == ["chair"], (name, rows)
        (row,) = rows
        assert row["role"] == "red_line" and int(row["best_distance"]) <= 31  # type: ignore[call-overload]
    for other in ("pattern-hd-no-bar.mp4", "doorknob-hd-no-bar.mp4"):
        rows = match_video(index, VIDEOS / other, 0.5, sc.video_window, sc.video_min_frames)
        assert not [r for r in rows if r["matched"]], (other, rows)


@pytest.mark.integration
def test_hex_and_file_entries_list_remove_and_survive_a_new_client(store: BankStore,
                                                                   settings: Settings,
                                                                   tmp_path: Path) -> None:  # fmt: skip
    rng = np.random.default_rng(1)
    hexes = [rng.bytes(32).hex() for _ in range(5)]
    store.add("csam", "one", hexes[:1], "hash")
    (tmp_path / "h.csv").write_text(
        "id,hash,note\n" + "".join(f"e{i},{h},n\n" for i, h in enumerate(hexes[1:]))
    )
    store.add_entries("csam", hashfiles.read(tmp_path / "h.csv").entries)
    (tmp_path / "h.txt").write_text("\n".join(hexes[1:3]) + "\n")
    assert [e.entry_id for e in hashfiles.read(tmp_path / "h.txt").entries] == hexes[1:3]
    (row,) = BankStore(settings).counts()
    assert (row["entries"], row["hashes"], row["threshold"]) == (5, 5, 31)
    index = BankStore(settings).load()
    flipped = bytearray(bytes.fromhex(hexes[2]))
    flipped[0] ^= 0xFF  # 8 bits away
    (hit,) = index.match(flipped.hex())
    assert (hit.entry_id, hit.distance) == ("e1", 8)
    assert store.remove("csam", "e1") == 1
    assert not store.load().match(flipped.hex())
    assert store.remove("csam") == 4
    assert store.counts() == []


def test_bad_hash_and_bad_category_are_refused(store: BankStore, tmp_path: Path) -> None:
    with pytest.raises(BankError, match="64 hex"):
        store.add("csam", "x", ["abcd"], "hash")
    with pytest.raises(BankError, match="category"):
        store.create("other", "review", "known_bad.nope")
    (tmp_path / "bad.txt").write_text("zz" * 32 + "\n")
    with pytest.raises(BankError, match=r"bad.txt:1: .* is not a PDQ hash"):
        hashfiles.read(tmp_path / "bad.txt", "hex")


def test_popcount_distance_and_video_window_counting() -> None:
    a = "00" * 32
    b = "ff" + "00" * 30 + "0f"
    words = pdq.to_words([a, b])
    assert list(pdq.distances(words, pdq.to_words([b])[0])) == [12, 0]
    from scoring.banks import Bank

    bank = Bank("v", 31, "red_line", "known_bad.csam_bank")
    m = StreamMatcher(window=4, min_frames=2)
    hit = Hit(bank, "clip", "video", 5)
    assert m.observe("s", [hit]) == []
    assert m.observe("other", [hit]) == []  # streams are counted separately
    (hm,) = m.observe("s", [hit])
    assert (hm.role, hm.category, hm.distance) == ("red_line", "known_bad.csam_bank", 5)
    img = Hit(bank, "pic", "image", 3)
    assert len(m.observe("t", [img])) == 1
    assert len(BankIndex(words, np.array([0, 1], np.int32), np.array([31, 31], np.uint16),
                         [(bank, "a", "hash"), (bank, "b", "hash")]).match(a)) == 2  # fmt: skip


@pytest.mark.integration
async def test_the_bank_watch_keeps_its_index_through_a_redis_outage_and_catches_up(
    store: BankStore, settings: Settings
) -> None:
    """Redis unreachable: the watch keeps the index it has, counts each retry
    (framewatch_scoring_bank_watch_errors_total) and, when Redis is back, loads what changed."""
    import asyncio
    from urllib.parse import urlsplit

    from devkit.tcpproxy import TcpProxy
    from scoring.banks import BANK_WATCH_ERRORS, watch

    url = urlsplit(settings.redis_url.get_secret_value())
    async with TcpProxy((url.hostname, url.port)) as proxy:
        via = settings.model_copy(
            update={"redis_url": settings.redis_url.__class__(
                f"redis://127.0.0.1:{proxy.port}{url.path}")}
        )  # fmt: skip
        seen: list[int] = []
        task = asyncio.create_task(watch(via, store, lambda index: seen.append(len(index))))

        async def until(cond: Callable[[], bool]) -> None:
            while not cond():
                assert not task.done(), task
                await asyncio.sleep(0.05)

        await until(lambda: seen == [0])  # subscribed, the empty bank loaded
        errors = BANK_WATCH_ERRORS._value.get()
        await proxy.cut()  # the subscription drops; reconnects are refused
        await until(lambda: BANK_WATCH_ERRORS._value.get() >= errors + 2)  # retried, counted
        store.add("csam", "e1", ["f" * 64], "image")  # changed while the watch was away
        proxy.restore()
        await until(lambda: seen[-1] == 1)  # back: the change is loaded at once
        store.add("csam", "e2", ["0" * 64], "image")
        store.notify()
        await until(lambda: seen[-1] == 2)  # and it follows changes again
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task  # a cancel ends it; it is not retried
