"""Review outcomes through the real worker, broker and Redis: overturn, uphold, replay, stats."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from framewatch import kafkaio, records, redisio, scope
from framewatch.local import free_port
from framewatch.records import DeadLetter, Decision, Enforcement
from framewatch.settings import Settings
from streams import statement
from streams.inspect import table_snapshot
from tests.streams.helpers import scores
from tests.streams.worker import Worker, collect, env_for, produce, until

pytestmark = pytest.mark.integration


@pytest.fixture
def worker(settings: Settings, kafka_topics: dict[str, str], tmp_path: Path) -> Iterator[Worker]:
    w = Worker(settings, tmp_path / "faust", tmp_path / "worker.log", metrics_port=free_port())
    w.start()
    yield w
    w.stop()
    print((tmp_path / "worker.log").read_text()[-3000:])


def cli(settings: Settings, worker: Worker, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "framewatch.cli", *args],
        env=env_for(settings, worker.data_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )


def skey(stream: str) -> str:
    """The scores record's Kafka key as the scorer sets it (tenant/stream), so that a stream's
    scores and reviews share a partition and its state's changelog partition."""
    return scope.key("default", stream)


def blocks(stream: str, account: str, cat: str, t0: float) -> list[tuple[str, bytes]]:
    """Three frames over the block threshold: one block decision (k=3 of n=5)."""
    return [
        (skey(stream), records.encode(scores(i, stream, cats={cat: 0.95}, account=account, t0=t0)))
        for i in range(3)
    ]


def of(recs: list[Any], cls: type) -> list[Any]:
    return [r for r in recs if isinstance(r, cls)]


async def test_overturn_clears_stream_removes_strike_and_corrects_statement(
    settings: Settings, worker: Worker
) -> None:
    # account "acc": gore 1.5 + hate 1.5 + gore 1.5 = 4.5 strikes -> warn, then restrict.
    # Capture times are recent: the ledger re-steps at the review's time, with decay.
    t0 = time.time() - 600
    await produce(
        settings,
        blocks("g", "acc", "violence.gore", t0)
        + blocks("h", "acc", "hate.speech", t0 + 100)
        + blocks("g2", "acc", "violence.gore", t0 + 200)
        + blocks("u", "acc2", "violence.gore", t0 + 300)
        # hate 0.6 over three frames: review (and a hot mark in Redis), no strike
        + [(skey("r"), records.encode(scores(i, "r", cats={"hate.speech": 0.6}, account="acc3", t0=t0)))
           for i in range(3)],
    )  # fmt: skip
    decisions = of(await collect(settings, "decisions", want=5, worker=worker), Decision)
    block = {d.stream_id: d for d in decisions if d.action == "block"}
    assert sorted(block) == ["g", "g2", "h", "u"]
    in_review = next(d for d in decisions if d.stream_id == "r")
    assert in_review.action == "review"
    r = redis.from_url(settings.redis_url.get_secret_value())
    assert r.get(redisio.key(settings, "hot", scope.key("default", "r"))) == b"1"
    enf = of(
        await until(
            settings,
            "enforcement",
            lambda rs: (
                {(e.account_id, e.action) for e in of(rs, Enforcement)}
                >= {("acc", "warn"), ("acc", "restrict"), ("acc2", "warn")}
            ),
            worker,
        ),
        Enforcement,
    )
    restrict = next(e for e in enf if e.account_id == "acc" and e.action == "restrict")

    # a malformed review is dead-lettered and the worker carries on with the real ones
    prod = kafkaio.producer(settings)
    await prod.start()
    try:
        await prod.send_and_wait(
            settings.topics.name("reviews"), b'{"type":"review","v":1,"outcome":"maybe"}', key=b"g"
        )
    finally:
        await prod.stop()

    missing = cli(settings, worker, "review", "resolve", "nope", "--outcome", "upheld")
    assert missing.returncode == 1
    assert "no decision 'nope'" in missing.stderr and "tail decisions" in missing.stderr

    x = block["g"].decision_id
    done = cli(
        settings, worker, "review", "resolve", x, "--outcome", "overturned",
        "--note", "a red sauce cooking show", "--reviewer", "ana", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rv = json.loads(done.stdout)
    assert rv["action"] == "block" and rv["category"] == "violence.gore"
    up = cli(settings, worker, "review", "resolve", block["u"].decision_id, "--outcome", "upheld")
    assert up.returncode == 0, up.stderr
    cleared = cli(
        settings, worker, "review", "resolve", in_review.decision_id, "--outcome", "overturned"
    )
    assert cleared.returncode == 0, cleared.stderr

    def allowed(rs: list[Any]) -> bool:
        return sum(d.action == "allow" for d in of(rs, Decision)) >= 2

    decisions = of(await until(settings, "decisions", allowed, worker), Decision)
    allow = [d for d in decisions if d.action == "allow" and d.stream_id == "g"]
    assert len(allow) == 1 and allow[0].corrects == x
    # the overturned review: the stream is ok again, no statement (nothing was restricted)
    r_allow = [d for d in decisions if d.action == "allow" and d.stream_id == "r"]
    assert len(r_allow) == 1 and r_allow[0].corrects == in_review.decision_id
    assert r_allow[0].statement is None and r_allow[0].previous_state == "review"
    assert r.get(redisio.key(settings, "hot", scope.key("default", "r"))) is None
    assert allow[0].previous_state == "blocked"
    stm = allow[0].statement
    assert stm is not None
    statement.validate(stm)  # schema-valid
    assert stm.end_date_visibility_restriction == stm.application_date
    assert x in stm.decision_facts and "a red sauce cooking show" in stm.decision_facts
    assert stm.puid == allow[0].decision_id

    # the ledger: one strike gone, the ladder back from restrict to warn, with a statement
    enf = of(
        await until(
            settings,
            "enforcement",
            lambda rs: any(e.reverses for e in of(rs, Enforcement)),
            worker,
        ),
        Enforcement,
    )
    rev = [e for e in enf if e.reverses]
    assert len(rev) == 1
    assert (rev[0].action, rev[0].previous_action) == ("warn", "restrict")
    assert rev[0].reverses == restrict.enforcement_id and rev[0].decision_ids == [x]
    assert rev[0].statement is not None and rev[0].statement.end_date_account_restriction
    view = json.loads(cli(settings, worker, "account", "show", "acc", "--json").stdout)
    assert view["action"] == "warn"
    assert sorted(s["decision_id"] for s in view["strikes"]) == sorted(
        [block["h"].decision_id, block["g2"].decision_id]
    )

    # the stream is ok again and a benign frame does not re-block it; "u" (upheld) stays blocked
    await produce(
        settings,
        [(skey("g"), records.encode(scores(i, "g", cats={"violence.gore": 0.05}, account="acc", t0=t0)))
         for i in range(3, 6)],
    )  # fmt: skip

    # replaying the same review: no second strike removed, no second reversal, same allow id
    again = cli(settings, worker, "review", "resolve", x, "--outcome", "overturned")
    assert again.returncode == 0, again.stderr
    decisions = of(
        await until(
            settings,
            "decisions",
            lambda rs: sum(d.action == "allow" for d in of(rs, Decision)) >= 3,
            worker,
        ),
        Decision,
    )
    assert {d.decision_id for d in decisions if d.stream_id == "g" and d.action == "allow"} == {
        allow[0].decision_id
    }
    assert [d.action for d in decisions if d.stream_id == "g"] == ["block", "allow", "allow"]
    states = await table_snapshot(settings, settings.topics.changelog("stream-state"))
    assert states["default/g"]["state"] == "ok" and states["default/u"]["state"] == "blocked"
    assert states["default/r"]["state"] == "ok"
    enf = of(await collect(settings, "enforcement", want=len(enf) + 1, timeout=3), Enforcement)
    assert sum(1 for e in enf if e.reverses) == 1
    ledgers = await table_snapshot(settings, settings.topics.changelog("account-ledger"))
    assert (
        len(ledgers["default/acc"]["strikes"]) == 2 and ledgers["default/acc"]["step"] == 1
    )  # warn
    assert (
        len(ledgers["default/acc2"]["strikes"]) == 1 and ledgers["default/acc2"]["step"] == 1
    )  # upheld: as is
    # a review decision carries no strike: its overturn never went to the ledger
    assert ledgers["default/acc3"]["strikes"] == [] and ledgers["default/acc3"]["seen"] == []

    dead = of(await collect(settings, "dead_letters", want=1, timeout=10), DeadLetter)
    assert [(d.source_topic, d.reason) for d in dead] == [
        (settings.topics.name("reviews"), "invalid")
    ]

    # precision per category from the reviews topic; the re-sent verdict counts once
    stats = cli(settings, worker, "review", "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    gore = {c["category"]: c for c in json.loads(stats.stdout)["categories"]}["violence.gore"]
    assert (gore["upheld"], gore["overturned"], gore["precision"]) == (1, 1, 0.5)
    assert (
        worker.metric(
            'framewatch_review_outcomes_total{category="violence.gore",outcome="overturned"}'
        )
        == 1.0
    )
    assert (
        worker.metric('framewatch_review_outcomes_total{category="violence.gore",outcome="upheld"}')
        == 1.0
    )
    # the dashboard's decisions panel: counted by action and L1 domain, created at start
    assert worker.metric('framewatch_decisions_total{action="block",category="violence"}') >= 1
    assert 'framewatch_decisions_total{action="review",category="sexual"} 0.0' in (
        worker.metrics_text()
    )
