"""Real videos through the real broker: counts, order, PDQ against Meta's reference, bad files."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from framewatch import records
from framewatch.settings import Settings
from ingest.engine import StreamMeta
from ingest.errors import SourceError
from ingest.runner import StreamIngester
from tests.ingest.helpers import VPDQ, consume, video

pytestmark = pytest.mark.timeout(90)


def reference(name: str) -> dict[int, tuple[int, str]]:
    out = {}
    for line in (VPDQ / f"{name}.txt").read_text().splitlines():
        n, q, h, _ = line.split(",")
        out[int(n)] = (int(q), h)
    return out


async def test_file_sample_count_order_and_pdq(settings: Settings, kafka_topics: object) -> None:
    ing = StreamIngester(
        settings, video("chair-orig-22-sd-bar.mp4"), StreamMeta("chair", "acct-1", channel="kids")
    )
    summary = await ing.run()
    assert summary.error is None and summary.decode_errors == 0
    # 22.4 s at 1 fps: 23 interval samples (t=0..22), maybe a scene cut or two; minus duplicates
    assert 20 <= summary.sent <= 26, summary
    frames = await consume(settings, "frames", summary.sent)
    assert len(frames) == summary.sent
    assert all(isinstance(f, records.Frame) for f in frames)
    assert [f.seq for f in frames] == list(range(summary.sent))  # order kept per stream
    assert frames[0].sample_reason == "first" and frames[0].pts == 0.0
    pts = [f.pts for f in frames]
    assert pts == sorted(pts)
    f0 = frames[0]
    assert (f0.width, f0.height, f0.channel, f0.account_id) == (480, 720, "kids", "acct-1")
    assert f0.jpeg[:3] == b"\xff\xd8\xff"
    ref = reference("chair-orig-22-sd-bar")
    dists = []
    for f in frames:
        q, h = ref[round(f.pts * 30)]  # frame N = N-th decoded frame at 30 fps
        if q >= 50 and f.pdq_quality and f.pdq_quality >= 50:
            dists.append(records and (int(f.pdq, 16) ^ int(h, 16)).bit_count())
    assert len(dists) >= 10
    assert max(dists) <= 31
    assert sum(d <= 8 for d in dists) > len(dists) / 2, dists


async def test_keyframe_mode_decodes_far_fewer_frames(
    settings: Settings, kafka_topics: object
) -> None:
    full = StreamIngester(settings, video("pattern-hd-no-bar.mp4"), StreamMeta("full", "a"))
    key = StreamIngester(
        settings, video("pattern-hd-no-bar.mp4"), StreamMeta("key", "a"), keyframes_only=True
    )
    s_full, s_key = await asyncio.gather(full.run(), key.run())
    assert s_full.read >= 160  # 6.9 s at 30 fps: the 167 of 206 frames others refer to
    assert 1 <= s_key.read < s_full.read / 5
    assert s_key.sent >= 1 and set(s_key.by_reason) <= {"first", "keyframe"}


async def test_odd_sizes_keep_aspect_and_short_side(
    settings: Settings, kafka_topics: object
) -> None:
    from io import BytesIO

    from PIL import Image

    summary = await StreamIngester(
        settings, video("pattern-hd-no-bar.mp4"), StreamMeta("tall", "a"), fps=2
    ).run()
    assert 12 <= summary.sent <= 16  # 6.9 s x 2 fps
    frames = await consume(settings, "frames", summary.sent)
    img = Image.open(BytesIO(frames[0].jpeg))
    assert (frames[0].width, frames[0].height) == (720, 1280)
    assert min(img.size) == 384 and img.size[1] > img.size[0]


async def test_truncated_and_corrupt_files_dead_letter_without_hurting_others(
    settings: Settings, kafka_topics: object, tmp_path: Path
) -> None:
    src = Path(video("doorknob-hd-no-bar.mp4"))
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(src.read_bytes()[: src.stat().st_size // 3])
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 200)
    good = tmp_path / "good.mp4"
    shutil.copy(src, good)

    runs = [
        StreamIngester(settings, str(p), StreamMeta(name, "a"))
        for name, p in (("trunc", truncated), ("garbage", garbage), ("good", good))
    ]
    results = await asyncio.gather(*(r.run() for r in runs), return_exceptions=True)
    assert isinstance(results[1], SourceError) and "corrupt" in str(results[1])
    good_summary = results[2]
    assert not isinstance(good_summary, BaseException) and good_summary.sent >= 4
    # truncated: the frames before the cut are still sampled, then a clear error
    assert isinstance(results[0], SourceError) and results[0].reason == "truncated"
    assert "truncated" in str(results[0]) and "only" in str(results[0])
    dead = await consume(settings, "dead_letters", 2, timeout=10)
    keys = {d.key for d in dead}
    assert keys == {"default/garbage", "default/trunc"}  # the stream's key: tenant/stream
    assert all(d.stage == "ingest" and d.reason.startswith("source_") for d in dead)
    assert "default/good" not in keys
    frames = await consume(settings, "frames", 100, timeout=5)
    assert sum(f.stream_id == "good" for f in frames) == good_summary.sent
    # every frame before the cut (1.13 s of video) comes out of the single decoder thread
    # (ingest.decode_threads 1; FFmpeg's frame threads kept the last ones): samples t=0 and t=1
    assert sum(f.stream_id == "trunc" for f in frames) == 2
