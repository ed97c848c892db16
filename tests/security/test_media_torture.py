"""Hostile media through the real paths: `framewatch ingest FILE`, the push API, `framewatch check`.

Every input ends in a clear error (with a dead-letter record where a pipeline consumed it) or a
correct frame (EXIF rotation applied, CMYK converted, 16-bit scaled, first frame of an
animation); never a crash, never a hang. Inputs are made at test time
(devkit/torture.py); `benchmarks/torture.py` measures their peak memory.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from PIL import Image

from devkit.torture import ALL, IMAGES, VIDEOS
from framewatch import apikeys, kafkaio, records, redisio
from framewatch.settings import Settings, to_env
from tests.ingest.helpers import consume, push_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

# video case -> (exit code, dead-letter reason or None, words the error must contain)
VIDEO_EXPECT = {
    "mp4_truncated": (1, "source_corrupt", "truncated"),
    "mp4_corrupt": (0, None, ""),  # the decodable frames are sent, corrupt packets counted
    "flv_truncated": (1, "source_truncated", "truncated"),
    "flv_corrupt": (1, "source_truncated", "truncated"),
    "audio_only": (1, "source_no_video", "no video stream"),
    "unknown_codec": (1, "source_unsupported_codec", "re-encode"),
    "video_zero_bytes": (1, "source_corrupt", "cannot open"),
    "video_garbage": (1, "source_corrupt", "cannot open"),
}
# image case -> push API (status, error code or None)
PUSH_EXPECT = {
    "image_zero_bytes": (400, "empty_body"),
    "png_zero_size": (422, "bad_image"),
    "png_bomb_20000": (413, "too_many_pixels"),
    "png_real_bomb": (413, "too_many_pixels"),
    "jpeg_bomb_20000": (413, "too_many_pixels"),
    "jpeg_truncated": (422, "bad_image"),
    "jpeg_6000": (202, None),
    "gif_animated": (415, "unsupported_media_type"),
    "webp_animated": (202, None),
    "jpeg_cmyk": (202, None),
    "png_16bit": (202, None),
    "jpeg_exif_rotated": (202, None),
}
# image case -> `framewatch check`: None when it must be scored, else words of the error
CHECK_EXPECT = {
    "image_zero_bytes": "cannot decode",
    "png_zero_size": "cannot decode",
    "png_bomb_20000": "decompression bomb",
    "png_real_bomb": "over the limit",
    "jpeg_bomb_20000": "decompression bomb",
    "jpeg_truncated": "truncated or corrupt",
    "jpeg_6000": None,
    "gif_animated": None,
    "webp_animated": None,
    "jpeg_cmyk": None,
    "png_16bit": None,
    "jpeg_exif_rotated": None,
}


def near(rgb: np.ndarray, want: tuple[int, int, int], tol: int = 40) -> bool:
    return bool(np.abs(rgb.astype(int) - np.array(want)).max() <= tol)


async def fw(settings: Settings, *args: str, timeout: float = 90) -> tuple[int, str, str]:
    env = {**os.environ, **to_env(settings)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "framewatch.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        raise AssertionError(f"framewatch {' '.join(args)} hung for {timeout}s") from None
    return proc.returncode or 0, out.decode(), err.decode()


async def test_bad_videos_through_file_ingest(
    settings: Settings, kafka_topics: object, tmp_path: Path
) -> None:
    async def one(name: str) -> tuple[str, int, str, str]:
        c = ALL[name]
        path = tmp_path / f"{name}{c.suffix}"
        path.write_bytes(c.make())
        rc, out, err = await fw(settings, "ingest", str(path), "--stream-id", name,
                                "--account-id", "acct", "--json")  # fmt: skip
        return name, rc, out, err

    results = await asyncio.gather(*(one(c.name) for c in VIDEOS))
    dls = await consume(settings, "dead_letters", sum(1 for e in VIDEO_EXPECT.values() if e[1]))
    reasons = {d.key: d.reason for d in dls if isinstance(d, records.DeadLetter)}
    for name, rc, out, err in results:
        want_rc, want_reason, words = VIDEO_EXPECT[name]
        assert "Traceback" not in err, (name, err)
        assert rc == want_rc, (name, rc, err)
        assert reasons.get(f"default/{name}") == want_reason, (name, reasons)
        summary = json.loads(out.strip().splitlines()[-1])
        if want_rc:
            assert words in err and "framewatch: error:" in err, (name, err)
        else:
            assert summary["sent"] >= 1 and summary["decode_errors"] >= 1, summary
    # what was decodable before the damage still arrived, in order
    frames = [f for f in await consume(settings, "frames", 4, timeout=5)]
    assert {f.stream_id for f in frames} >= {"mp4_corrupt", "flv_truncated"}


@pytest.fixture
async def push_url(settings: Settings, kafka_topics: object) -> AsyncIterator[tuple[str, str]]:
    key = apikeys.create(settings, redisio.sync_client(settings), "tenant-t")
    async with push_server(settings) as url:
        yield url, key


async def test_bad_images_through_the_push_api(
    settings: Settings, push_url: tuple[str, str]
) -> None:
    url, key = push_url
    got = {}
    async with aiohttp.ClientSession() as s:
        for c in IMAGES:
            async with s.post(
                f"{url}/v1/streams/{c.name}/frames", data=c.make(),
                params={"account_id": "acct"}, headers={"Authorization": f"Bearer {key}"},
            ) as r:  # fmt: skip
                got[c.name] = (r.status, (await r.json()).get("error"))
    assert got == PUSH_EXPECT
    refused = [n for n, (st, _) in PUSH_EXPECT.items() if st in (413, 415, 422)]
    dls = await consume(settings, "dead_letters", len(refused))
    assert sorted(d.key for d in dls) == sorted(f"tenant-t/{n}" for n in refused)
    assert all(d.reason.startswith("push_") and "tenant tenant-t" in d.error for d in dls)
    frames = {f.stream_id: f for f in await consume(settings, "frames", 5)}
    thumb = {
        n: np.asarray(Image.open(io.BytesIO(f.jpeg)).convert("RGB")) for n, f in frames.items()
    }
    assert (frames["jpeg_6000"].width, frames["jpeg_6000"].height) == (6000, 6000)
    assert near(thumb["jpeg_6000"][10, 10], (220, 30, 30))
    assert near(thumb["webp_animated"][10, 10], (220, 30, 30))  # the first frame
    assert near(thumb["jpeg_cmyk"][10, 10], (220, 30, 30))  # CMYK converted, not inverted
    # 16-bit scaled to 8-bit, not clipped to white
    t16 = thumb["png_16bit"]
    assert near(t16[10, 5], (63, 63, 63), 8) and near(t16[10, -5], (191, 191, 191), 8)
    rot = frames["jpeg_exif_rotated"]
    assert (rot.width, rot.height) == (96, 128)  # portrait: EXIF orientation applied
    t = thumb["jpeg_exif_rotated"]
    assert near(t[3, t.shape[1] // 2], (220, 30, 30))  # the red strip is on top
    assert not near(t[-3, t.shape[1] // 2], (220, 30, 30))


async def test_bad_images_through_framewatch_check(settings: Settings, tmp_path: Path) -> None:
    paths = []
    for c in IMAGES:
        p = tmp_path / f"{c.name}{c.suffix}"
        p.write_bytes(c.make())
        paths.append(str(p))
    # the upright twin of the EXIF-rotated image: their PDQ hashes must agree
    upright = Image.open(io.BytesIO(ALL["jpeg_exif_rotated"].make())).transpose(
        Image.Transpose.ROTATE_270
    )
    twin = tmp_path / "upright.jpg"
    upright.save(twin, "JPEG", quality=95)
    s = settings.model_copy(update={"scoring": settings.scoring.model_copy(
        update={"models": ["opennsfw"], "providers": ["CPUExecutionProvider"]})})  # fmt: skip
    rc, out, err = await fw(s, "check", "--json", *paths, str(twin), timeout=120)
    assert rc == 2 and "Traceback" not in err, err  # some inputs are bad: exit 2, no crash
    results = {Path(r["image"]).stem: r for r in json.loads(out)}
    for name, words in CHECK_EXPECT.items():
        r = results[name]
        if words is None:
            assert "error" not in r and r["decision"] in ("allow", "review", "block"), r
        else:
            assert words in r["error"] and f"{name}" in err, (name, r)
    a, b = results["jpeg_exif_rotated"]["pdq"], results["upright"]["pdq"]
    assert bin(int(a, 16) ^ int(b, 16)).count("1") <= 16, "EXIF rotation not applied by check"


async def test_concurrent_push_decodes_are_bounded(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Big pushes arriving together wait their turn: memory is bounded by the setting."""
    from framewatch import images

    s = make_settings(ingest={"push_max_concurrent_decodes": 2})
    await kafkaio.create_topics(s)
    running, peak = 0, 0
    lock, real = threading.Lock(), images.decode
    pair = threading.Barrier(2, timeout=20)  # two decodes must run at once to pass it

    def counting(*a: Any, **kw: Any) -> Any:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            pair.wait()
            return real(*a, **kw)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(images, "decode", counting)
    key = apikeys.create(s, redisio.sync_client(s), "tenant-t")
    data = ALL["jpeg_exif_rotated"].make()
    async with push_server(s) as url, aiohttp.ClientSession() as http:

        async def push(i: int) -> int:
            async with http.post(
                f"{url}/v1/streams/cam-{i}/frames", data=data,
                params={"account_id": "a"}, headers={"Authorization": f"Bearer {key}"},
            ) as r:  # fmt: skip
                return r.status

        statuses = await asyncio.gather(*(push(i) for i in range(6)))
    assert statuses == [202] * 6
    assert peak == 2  # two at once (the barrier saw them), never a third
