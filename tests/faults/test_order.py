"""The scorer keeps a stream's order, so the streams worker counts every frame.

Found by the backlog and redis-down fault scenarios: offender streams whose every frame was
scored were never blocked. The scorer scored a fetched batch concurrently and produced each
Scores as soon as it was ready, so a score-cache hit overtook frames still being inferred; the
streams worker treats a seq below one it has seen as a replay and drops it, bank match included.
"""

from __future__ import annotations

import pytest

from framewatch import kafkaio, records
from scoring.service import ScoringService
from tests.scoring.conftest import frames, jpeg
from tests.scoring.test_service import _frame, _serve_until

pytestmark = [pytest.mark.faults, pytest.mark.quick, pytest.mark.integration]


async def test_cache_hits_never_overtake_frames_being_inferred(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        scoring={"models": ["opennsfw"], "providers": ["CPUExecutionProvider"], "text_every": 0}
    )
    await kafkaio.create_topics(settings)
    pics = [jpeg(f[::4, ::4]) for f in frames("pattern-hd-no-bar.mp4", every=20, count=5)]
    seen, fresh = pics[0], pics[1:]
    topic = settings.topics.name("frames")
    prod = kafkaio.producer(settings)
    await prod.start()
    try:
        await prod.send_and_wait(topic, records.encode(_frame("s", 0, seen)), key=b"s")
        await _serve_until(ScoringService(settings), settings, 1)  # `seen` is now cached
        # one fetch: odd seqs need inference, even seqs are cache hits
        for seq in range(1, 9):
            data = fresh[seq // 2 % len(fresh)] if seq % 2 else seen
            await prod.send(topic, records.encode(_frame("s", seq, data)), key=b"s")
        await prod.flush()
    finally:
        await prod.stop()
    got = await _serve_until(ScoringService(settings), settings, 9)
    order = [records.decode(m.value, records.Scores).seq for m in got]
    assert order == list(range(9)), f"Scores left the scorer out of order: {order}"
