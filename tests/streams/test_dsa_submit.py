"""`framewatch dsa submit` against a stand-in of the Transparency Database on 127.0.0.1 (its
published rules: tests/streams/dsa_api.py) and the real Kafka: a backlog goes out in batches of
at most 100, 429/5xx are retried, every puid is created once even across a restart, and a
statement the database refuses is dead-lettered with the database's reason."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from framewatch import kafkaio, records, taxonomy
from framewatch.records import Decision, Enforcement, Reason
from framewatch.settings import Settings, to_env
from streams import dsa_submit, statement
from tests.streams.dsa_api import FakeTransparencyDb
from tests.streams.worker import collect

pytestmark = pytest.mark.integration
TOKEN = "X|ybqkCFX7ZkIFoLxtI0VAk1JBzMR9jVk4c4EU"
TAX = taxonomy.load()
CATS = ["violence.gore", "child_safety.csam", "sexual.explicit", "hate.speech",
        "drugs.depiction", "spam.url", "known_bad.ncii_bank", "terrorism.propaganda"]  # fmt: skip
NOW = time.time()


@pytest.fixture
async def db() -> AsyncIterator[FakeTransparencyDb]:
    fake = await FakeTransparencyDb(
        TOKEN, retired=frozenset({"STATEMENT_CATEGORY_SELF_HARM"})
    ).start()
    yield fake
    await fake.stop()


def _settings(
    make: Callable[..., Settings], db: FakeTransparencyDb, token: str = TOKEN
) -> Settings:
    """This test's settings (same topics as the kafka_topics fixture) aimed at the stand-in."""
    return make(
        streams={"session_timeout_s": 8},
        dsa={"base_url": db.url, "token": token, "retry_max_wait_s": 2.0},
    )


def _block(
    n: int, cat: str, settings: Settings, action: str = "block", tenant: str = "default"
) -> Decision:
    d = Decision(
        decision_id=f"dec-{n:04d}",
        stream_id=f"s{n}",
        account_id=f"a{n % 7}",
        tenant=tenant,
        action=action,  # type: ignore[arg-type]
        previous_state="ok",
        reasons=[
            Reason(category=cat, score=0.9, threshold=0.5, frames_seen=2, frames_window=3, rule="r")
        ],
        red_line=TAX.is_red_line(cat),
        policy_version="p1",
        first_frame_id=f"s{n}-f0",
        captured_at=NOW - 600,
        decided_at=NOW,
    )
    if action == "block":
        d = d.model_copy(update={"statement": statement.for_decision(d, TAX, settings)})
    return d


def _step(n: int, settings: Settings) -> Enforcement:
    e = Enforcement(enforcement_id=f"enf-{n:04d}", account_id=f"a{n}", action="restrict",
                    ladder_step=2, decision_ids=[f"dec-{n:04d}"], policy_version="p1",
                    issued_at=NOW)  # fmt: skip
    stm = statement.for_enforcement(e, "violence.gore", TAX, settings, False, NOW - 600)
    return e.model_copy(update={"statement": stm})


async def _produce(settings: Settings, recs: list[Any]) -> None:
    prod = kafkaio.producer(settings)
    await prod.start()
    try:
        for r in recs:
            topic = "enforcement" if isinstance(r, Enforcement) else "decisions"
            key = r.account_id if isinstance(r, Enforcement) else r.stream_id
            await prod.send(settings.topics.name(topic), records.encode(r), key=key.encode())
        await prod.flush()
    finally:
        await prod.stop()


async def test_backlog_batches_retries_restart_and_dead_letter(
    make_settings: Callable[..., Settings], kafka_topics: dict[str, str], db: FakeTransparencyDb
) -> None:
    s = _settings(make_settings, db)
    blocks = [_block(n, CATS[n % len(CATS)], s) for n in range(230)]
    refused = _block(999, "self_harm.depiction", s)  # a category this database retired
    reviews = [_block(500 + n, "violence.gore", s, action="review") for n in range(10)]
    steps = [_step(n, s) for n in range(20)]
    acme = [_block(700 + n, "violence.gore", s, tenant="acme") for n in range(5)]  # not ours
    await _produce(s, [*blocks, blocks[5], refused, *reviews, *steps, *acme])  # [5]: a replay
    expected = {r.statement.puid for r in [*blocks, *steps]}
    # call 1: 429 (Retry-After: 1); call 3: 503; the 2nd create's answer is lost (a 500)
    db.faults, db.lose_creates = {1: "429", 3: "503"}, {2}

    first = await dsa_submit.run(s, max_batches=1)  # stops after one batch: a restart
    assert first.batches == 1 and first.retries >= 1 and first.accepted + first.rejected > 0
    env = {**os.environ, **to_env(s)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "framewatch.cli", "dsa", "submit", "--json",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, err.decode()[-2000:]
    second = json.loads(out.decode().strip().splitlines()[-1])
    assert "records settled" in err.decode()  # progress lines on stderr

    # every statement is in the database exactly once; the refused one is not
    assert set(db.stored) == expected and len(db.stored) == 250
    assert all(len(c.puids) <= 100 for c in db.calls)
    created = [p for c in db.calls if c.status == 201 for p in c.puids]
    assert len(created) == len(set(created))  # no puid created twice, across the restart
    lost = {p for c in db.calls if c.status == 500 for p in c.puids}
    assert set(created) | lost == expected and not set(created) & lost
    statuses = [c.status for c in db.calls]
    assert {429, 503, 500} <= set(statuses)
    for i, c in enumerate(db.calls):
        if c.status in (429, 503, 500):  # the same batch again; a lost one is a duplicate
            assert db.calls[i + 1].puids == c.puids
            assert c.status != 500 or db.calls[i + 1].status == 422
    total = {k: getattr(first, k) + second[k] for k in second}
    print(f"calls {len(db.calls)}: {statuses}; largest batch {max(len(c.puids) for c in db.calls)}; "
          f"run 1 {first.as_dict()}; run 2 (after restart) {second}")  # fmt: skip
    assert total["records"] == 267 and total["rejected"] == 1
    assert total["other_tenants"] == 5  # another tenant's statements wait for its own submitter
    # the replayed block is dropped in its batch (skipped) or answered as a duplicate
    assert total["skipped"] + total["duplicates"] == 10 + len(lost) + 1
    assert total["accepted"] == 250 - len(lost)

    dead = [
        r
        for r in await collect(s, "dead_letters", want=1, timeout=30)
        if isinstance(r, records.DeadLetter)
    ]
    [d] = dead
    assert d.stage == "dsa" and d.reason == "dsa_rejected" and d.source_topic
    assert refused.decision_id in d.error and "The selected category is invalid." in d.error
    assert records.decode(d.payload or b"").decision_id == refused.decision_id  # replayable

    # nothing left: a third run submits nothing
    again = await dsa_submit.run(s)
    assert again.calls == 0 and again.records == 0


async def test_a_refused_token_stops_without_committing(
    make_settings: Callable[..., Settings], kafka_topics: dict[str, str], db: FakeTransparencyDb
) -> None:
    bad = _settings(make_settings, db, token="revoked")
    await _produce(bad, [_block(n, "violence.gore", bad) for n in range(5)])
    with pytest.raises(dsa_submit.SubmitError, match="FRAMEWATCH_DSA__TOKEN"):
        await dsa_submit.run(bad)
    assert db.stored == {} and [c.status for c in db.calls] == [401]
    done = await dsa_submit.run(_settings(make_settings, db))
    assert done.accepted == 5 and len(db.stored) == 5  # the same records, from the start
