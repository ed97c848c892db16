"""Combined rules through the real streams worker on the real broker: a possible minor with a
sexual score pages as a child-safety red line; a tenant's windowed rule fires across frames;
signals alone act at most as their rule says."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from framewatch import records
from framewatch.records import Alert, Decision
from framewatch.settings import Settings
from tests.streams.helpers import scores
from tests.streams.worker import Worker, collect, produce

pytestmark = pytest.mark.integration

TENANT_FILE = """scope: {tenant: acme}
combined:
  armed_person:
    all: {violence.weapons: 0.6, signal.face: 0.5}
    then: violence.graphic
    within: 3
rules:
  violence.graphic: {review: 0.5, block: 0.9, smoothing: {k: 1, n: 1}}
"""


@pytest.fixture
def settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    pdir = tmp_path / "policies"
    pdir.mkdir()
    (pdir / "acme.yaml").write_text(TENANT_FILE)
    return make_settings(streams={"session_timeout_s": 8, "policy_dir": str(pdir)})


@pytest.fixture
def worker(settings: Settings, kafka_topics: dict[str, str], tmp_path: Path) -> Iterator[Worker]:
    w = Worker(settings, tmp_path / "faust", tmp_path / "worker.log")
    w.start()
    yield w
    w.stop()
    print((tmp_path / "worker.log").read_text()[-3000:])


def enc(sc: records.Scores) -> tuple[str, bytes]:
    return sc.stream_id, records.encode(sc)


async def test_combined_rules_decide_in_the_worker(settings: Settings, worker: Worker) -> None:
    minor, sexual = "signal.minor_possible", "sexual"
    items = [
        # a possible minor on screen, then a sexual score in the same frame: red line
        enc(scores(0, "cs", cats={minor: 0.7, sexual: 0.2}, account="a1")),
        enc(scores(1, "cs", cats={minor: 0.7, sexual: 0.6}, account="a1")),
        # a possible minor alone, held: review, never a block
        *(enc(scores(i, "kid", cats={minor: 0.99}, account="a2")) for i in range(8)),
        # faces alone: nothing
        *(enc(scores(i, "faces", cats={"signal.face.male": 1.0}, account="a3")) for i in range(5)),
        # acme's rule: a knife, then a face two frames later (within 3): review
        enc(scores(0, "knife", cats={"violence.weapons.knife": 0.8}, account="a4", tenant="acme")),
        enc(scores(1, "knife", cats={}, account="a4", tenant="acme")),
        enc(scores(2, "knife", cats={"signal.face.male": 0.7}, account="a4", tenant="acme")),
        # the same frames of another tenant: no such rule there
        enc(scores(0, "knife2", cats={"violence.weapons.knife": 0.8}, account="a5")),
        enc(scores(1, "knife2", cats={"signal.face.male": 0.7}, account="a5")),
    ]
    await produce(settings, items)
    decisions = [
        d
        for d in await collect(settings, "decisions", want=3, worker=worker)
        if isinstance(d, Decision)
    ]
    got = {d.stream_id: (d.action, d.red_line, d.reasons[0].category, d.reasons[0].rule)
           for d in decisions}  # fmt: skip
    assert got == {
        "cs": ("block", True, "child_safety.minor_sexualization",
               "default.yaml:combined.minor_sexual"),
        "kid": ("review", False, minor, "default.yaml:signal.minor_possible"),
        "knife": ("review", False, "violence.graphic",
                  str(Path(settings.streams.policy_dir) / "acme.yaml") + ":combined.armed_person"),
    }  # fmt: skip
    cs = next(d for d in decisions if d.stream_id == "cs")
    assert cs.first_frame_id == "cs-f1"
    assert cs.statement is not None
    assert cs.statement.category == "STATEMENT_CATEGORY_PROTECTION_OF_MINORS"
    alerts = [a for a in await collect(settings, "alerts", want=1) if isinstance(a, Alert)]
    assert [(a.stream_id, a.category) for a in alerts] == [
        ("cs", "child_safety.minor_sexualization")
    ]
