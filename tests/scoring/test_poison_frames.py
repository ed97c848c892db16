"""A 12 MiB malformed frame is dead-lettered in a record that fits, and scoring goes on.

Regression for issue 14.2: the dead letter carried the whole 12 MiB base64 (over 16 MiB), the
broker refused it with MessageSizeTooLarge and the scorer crash-looped on the same record.
"""

from __future__ import annotations

import asyncio
import hashlib

from framewatch import kafkaio, records
from scoring.service import ScoringService
from tests.scoring.conftest import frames, jpeg
from tests.scoring.test_service import _frame, _read


async def test_huge_malformed_frame_gets_a_dead_letter_that_fits(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(scoring={"models": ["opennsfw"],
                                      "providers": ["CPUExecutionProvider"]})  # fmt: skip
    await kafkaio.create_topics(settings)
    poison = records.FRAME_MAGIC + b"\x01" + b"\x00\x00\x00\x10" + b"\x00" * (12 * 1024 * 1024)
    good = _frame("s0", 1, jpeg(frames("pattern-hd-no-bar.mp4", every=20, count=1)[0][::4, ::4]))
    prod = kafkaio.producer(settings)
    await prod.start()
    topic = settings.topics.name("frames")
    await prod.send_and_wait(topic, poison, key=b"s0")
    await prod.send_and_wait(topic, records.encode(good), key=b"s0")
    await prod.stop()

    svc = ScoringService(settings)
    task = asyncio.create_task(svc.run())
    try:
        got = await _read(settings, settings.topics.name("scores"), 1)
        dead = await _read(settings, settings.topics.name("dead_letters"), 1)
    finally:
        svc.stop()
        await asyncio.wait_for(task, 30)  # raises here if the scorer died on the dead letter
    assert [records.decode(m.value, records.Scores).frame_id for m in got] == [good.frame_id]
    (d,) = [records.decode(m.value, records.DeadLetter) for m in dead]
    assert d.reason == "malformed" and d.payload_truncated
    assert d.payload_size == len(poison)
    assert d.payload_sha256 == hashlib.sha256(poison).hexdigest()
    assert len(dead[0].value) < 1024 * 1024
