"""A shadow policy on live scores: its decisions go to decisions-shadow, and it acts on nothing
(the real worker on the real broker; and the processor without one)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from framewatch import records
from framewatch.records import Decision
from framewatch.settings import Settings
from streams.processor import Processor
from tests.streams.helpers import scores
from tests.streams.worker import Worker, collect, produce

STRICTER = "scope: {}\nrules:\n  sexual: {review: 0.4, block: 0.85}\n"


@pytest.fixture
def settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "default.yaml").write_text(STRICTER)
    return make_settings(streams={"session_timeout_s": 8, "shadow_policy_dir": str(shadow)})


def test_the_shadow_policy_decides_apart_and_sends_only_to_its_topic(settings: Settings) -> None:
    proc = Processor(settings)
    live, shadow, outs = None, None, []
    for i in range(5):
        sc = scores(i, "mild", cats={"sexual": 0.45})
        r = proc.on_scores(live, sc)
        live = r.state
        s = proc.on_scores_shadow(shadow, sc)
        shadow = s.state
        assert r.outputs == [] and not r.hot  # the live policy: 0.45 is under review 0.5
        outs += s.outputs
    (out,) = outs
    assert out.topic == "decisions_shadow" and out.record.action == "review"
    assert out.record.policy_version == proc.shadow.policy.version  # type: ignore[union-attr]
    assert out.record.policy_version != proc.policies.policy.version


@pytest.fixture
def worker(settings: Settings, kafka_topics: dict[str, str], tmp_path: Path) -> Iterator[Worker]:
    w = Worker(settings, tmp_path / "faust", tmp_path / "worker.log")
    w.start()
    yield w
    w.stop()
    print((tmp_path / "worker.log").read_text()[-3000:])


@pytest.mark.integration
async def test_the_worker_writes_shadow_decisions_and_acts_on_none(
    settings: Settings, worker: Worker
) -> None:
    items = [scores(i, "mild", cats={"sexual": 0.45}) for i in range(5)]
    items += [scores(i, "gore", cats={"violence.gore": 0.9}) for i in range(4)]
    await produce(settings, [(s.stream_id, records.encode(s)) for s in items])
    shadow = [d for d in await collect(settings, "decisions_shadow", want=2, worker=worker)
              if isinstance(d, Decision)]  # fmt: skip
    live = [d for d in await collect(settings, "decisions", want=1) if isinstance(d, Decision)]
    assert sorted((d.stream_id, d.action) for d in shadow) == [
        ("gore", "block"),
        ("mild", "review"),
    ]
    assert [(d.stream_id, d.action) for d in live] == [("gore", "block")]
    assert all(d.statement is None for d in shadow)  # no statement of reasons for a shadow
    assert {d.policy_version for d in shadow}.isdisjoint({d.policy_version for d in live})
