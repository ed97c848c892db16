"""The scorer survives a network cut longer than its group session.

Found by the cut-network-scoring scenario: after 20 s without the broker the group had moved on, the
scorer's offset commit was refused (CommitFailedError) and the scorer exited, leaving every
later frame unscored until someone restarted it.
"""

from __future__ import annotations

import asyncio

import pytest

from devkit.faults import Stack
from framewatch import kafkaio, records
from scoring.service import ScoringService
from tests.scoring.conftest import frames, jpeg
from tests.scoring.test_service import _frame, _read

pytestmark = [pytest.mark.faults, pytest.mark.quick, pytest.mark.integration]


@pytest.mark.timeout(180)
async def test_scorer_keeps_scoring_after_a_cut_longer_than_its_session(
    fault_stack: Stack,
) -> None:
    s = fault_stack.settings("partition").model_copy(deep=True)
    s.scoring.models, s.scoring.providers = ["opennsfw"], ["CPUExecutionProvider"]
    s.scoring.text_every = 0
    await kafkaio.create_topics(s)
    pics = [jpeg(f[::2, ::2]) for f in frames("chair-orig-22-sd-bar.mp4", every=15, count=12)]
    prod = kafkaio.producer(s)
    await prod.start()
    topic = s.topics.name("frames")
    async with fault_stack.proxy() as proxy:
        behind = s.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{proxy.port}"})
        svc = ScoringService(behind)
        task = asyncio.create_task(svc.run())
        try:
            await prod.send_and_wait(topic, records.encode(_frame("s", 0, pics[0])), key=b"s")
            await _read(s, s.topics.name("scores"), 1, timeout=60)  # joined and scoring
            for seq in range(1, 9):  # a batch in flight when the link goes
                await prod.send(topic, records.encode(_frame("s", seq, pics[seq])), key=b"s")
            await prod.flush()
            await asyncio.sleep(0.3)
            await proxy.cut()
            await asyncio.sleep(15)  # longer than the 10 s group session
            proxy.restore()
            for seq in range(9, 12):
                await prod.send_and_wait(topic, records.encode(_frame("s", seq, pics[seq])),
                                         key=b"s")  # fmt: skip
            # every frame scored; some twice (those in flight at the cut): read until all are
            got = await _read(
                s,
                s.topics.name("scores"),
                12,
                timeout=90,
                until=lambda out: (
                    {records.decode(m.value, records.Scores).seq for m in out} >= set(range(12))
                ),
            )
            assert not task.done(), task.exception() if task.done() else ""
        finally:
            await prod.stop()
            svc.stop()
            await asyncio.wait_for(task, 30)
    seqs = {records.decode(m.value, records.Scores).seq for m in got}
    assert seqs == set(range(12))  # every frame scored (some may be scored twice: harmless)
