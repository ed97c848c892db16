"""The real worker on the real broker: transitions, red-line fast lane, dead letters, restarts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest
import redis

from framewatch import records, redisio, scope
from framewatch.records import Alert, DeadLetter, Decision, Enforcement
from framewatch.settings import Settings
from streams.inspect import table_snapshot
from tests.streams.helpers import scores
from tests.streams.worker import Worker, collect, env_for, produce

pytestmark = pytest.mark.integration


def enc(sc: records.Scores) -> tuple[str, bytes]:
    return sc.stream_id, records.encode(sc)


async def test_scripted_streams_red_lines_and_dead_letters(
    settings: Settings, worker: Worker
) -> None:
    gore = [0.1, 0.6, 0.6, 0.6, 0.9, 0.9, 0.9, 0.9, 0.9]
    items = [
        enc(scores(i, "gore", cats={"violence.gore": c}, account="a1")) for i, c in enumerate(gore)
    ]
    items += [enc(scores(i, "clean", cats={"violence.gore": 0.05}, account="a2")) for i in range(6)]
    items.append(enc(scores(0, "red", cats={"child_safety.csam": 0.7}, account="a3")))
    items.append(enc(scores(1, "red", cats={"child_safety.csam": 0.9}, account="a3")))
    match = {"bank": "terror", "entry_id": "e9", "distance": 8, "threshold": 31}
    items.append(
        enc(
            scores(
                0,
                "hash",
                matches=[{**match, "role": "red_line", "category": "known_bad.terror_bank"}],
                account="a4",
            )
        )
    )
    items.append(("junk", b'{"type":"scores","v":1,"oops":true}'))
    items.append(("junk2", b"\x00not json"))
    # the worker carries on after bad records: this stream still reviews
    items += [enc(scores(i, "after", cats={"hate.speech": 0.6}, account="a5")) for i in range(3)]
    await produce(settings, items)

    decisions = [
        d
        for d in await collect(settings, "decisions", want=5, worker=worker)
        if isinstance(d, Decision)
    ]
    by_stream: dict[str, list[str]] = {}
    for d in decisions:
        by_stream.setdefault(d.stream_id, []).append(d.action)
    assert by_stream == {
        "gore": ["review", "block"],
        "red": ["block"],
        "hash": ["block"],
        "after": ["review"],
    }
    red = next(d for d in decisions if d.stream_id == "red")
    assert red.red_line and red.first_frame_id == "red-f0" and red.evidence_frame_ids == ["red-f0"]
    assert red.statement is not None
    assert red.statement.automated_decision == "AUTOMATED_DECISION_FULLY"
    assert red.statement.category == "STATEMENT_CATEGORY_PROTECTION_OF_MINORS"
    gore_block = next(d for d in decisions if d.stream_id == "gore" and d.action == "block")
    assert gore_block.decision_id == records.stable_id(
        scope.key("default", "gore"), "block", "gore-f4"
    )

    alerts = [a for a in await collect(settings, "alerts", want=2) if isinstance(a, Alert)]
    assert sorted(a.stream_id for a in alerts) == ["hash", "red"]
    assert all(a.severity == "critical" and a.runbook_url for a in alerts)

    dead = [x for x in await collect(settings, "dead_letters", want=2) if isinstance(x, DeadLetter)]
    assert sorted(x.key for x in dead) == ["junk", "junk2"]
    assert {x.reason for x in dead} == {"invalid", "malformed"}

    r = redis.from_url(settings.redis_url.get_secret_value())
    assert r.get(redisio.key(settings, "hot", scope.key("default", "after"))) == b"1"
    assert (
        0
        < r.ttl(redisio.key(settings, "hot", scope.key("default", "after")))
        <= settings.streams.hot_ttl_s
    )
    assert r.get(redisio.key(settings, "hot", scope.key("default", "clean"))) is None

    enf = [e for e in await collect(settings, "enforcement", want=3) if isinstance(e, Enforcement)]
    # a3 (child safety, weight 10) climbs to suspend_stream at once; a1 (gore 1.5) gets a warning
    actions = {e.account_id: e.action for e in enf}
    assert actions == {"a1": "warn", "a3": "suspend_stream", "a4": "suspend_stream"}
    assert all(e.statement is not None for e in enf)


async def test_kill_and_restart_loses_no_strike_and_counts_none_twice(
    settings: Settings, worker: Worker
) -> None:
    def block_stream(n: int) -> list[tuple[str, bytes]]:
        return [
            enc(
                scores(
                    i, f"s{n}", cats={"violence.gore": 0.95}, account="acct", t0=1000.0 + n * 100
                )
            )
            for i in range(4)
        ]

    await produce(settings, [x for n in range(4) for x in block_stream(n)])
    await collect(settings, "decisions", want=4, timeout=60, settle=0.5, worker=worker)
    worker.kill()  # SIGKILL: no clean shutdown, offsets may lag the outputs
    # replay part of the input (as a rebalance would) and add new streams while it is down
    await produce(settings, [x for n in range(2, 7) for x in block_stream(n)])
    worker.start()
    decisions = [
        d
        for d in await collect(settings, "decisions", want=7, timeout=90, worker=worker)
        if isinstance(d, Decision)
    ]
    ids = {d.decision_id for d in decisions}
    assert len(ids) == 7  # s0..s6 blocked once each (replays produce the same ids)
    latest = await table_snapshot(settings, settings.topics.changelog("account-ledger"))
    ledger = latest["default/acct"]
    counted = [s["decision_id"] for s in ledger["strikes"]]
    assert sorted(counted) == sorted(ids)  # every strike once, none lost
    enf = [e for e in await collect(settings, "enforcement", want=3) if isinstance(e, Enforcement)]
    # 7 gore blocks x 1.5 strikes: warn at 1.5, restrict at 4.5, suspend_stream at 9 -- once each
    steps = {e.enforcement_id: e.action for e in enf}
    assert sorted(steps.values()) == ["restrict", "suspend_stream", "warn"]
    assert ledger["step"] == 3
    shown = subprocess.run(
        [sys.executable, "-m", "framewatch.cli", "account", "show", "acct", "--json"],
        env=env_for(settings, worker.data_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert view["action"] == "suspend_stream" and len(view["strikes"]) == 7


async def test_a_quiet_stream_killed_midway_decides_once(
    settings: Settings, worker: Worker
) -> None:
    """A quiet stream's benign frames are not written to the changelog; kill -9 the worker
    after two flagged frames, replay from before them, and the review still comes out once,
    from the same first frame."""
    benign = {"hate.speech": 0.1, "violence.gore": 0.05}

    def frame(i: int, hate: float) -> tuple[str, bytes]:
        sc = scores(i, "q", cats={**benign, "hate.speech": hate}, account="aq", session="life1")
        return scope.stream(sc), records.encode(sc)

    await produce(settings, [frame(i, 0.1) for i in range(8)] + [frame(8, 0.6), frame(9, 0.6)])
    key = scope.key("default", "q")
    deadline = time.monotonic() + 90
    while True:  # until the flagged frames' state is in the changelog
        snap = await table_snapshot(settings, settings.topics.changelog("stream-state"))
        if key in snap and "q-f9" in snap[key]["recent"]:
            break
        if time.monotonic() > deadline:
            pytest.fail("the flagged frames' state never reached the changelog in 90 s")
        await asyncio.sleep(0.5)  # the changelog topic may not exist yet: then it returns at once
    worker.kill()
    worker.start()  # replays from its last commit; and frames 4-9 come again, as after a rebalance
    await produce(
        settings, [frame(i, 0.1) for i in range(4, 8)] + [frame(i, 0.6) for i in (8, 9, 10)]
    )
    decisions = [
        d
        for d in await collect(settings, "decisions", want=1, timeout=90, settle=3, worker=worker)
        if isinstance(d, Decision)
    ]
    assert [(d.action, d.first_frame_id) for d in decisions] == [("review", "q-f8")]
    assert decisions[0].decision_id == records.stable_id(key, "review", "q-f8")
