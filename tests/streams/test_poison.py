"""Poison records on the scores topic: each is dead-lettered (and fits), none stops the worker.

Regression for issue 14.2: a captured_at of -1e18 or 1e13 crashed the decide agent on its first
block (statement dates), NaN reached webhooks as the invalid JSON literal NaN, and 3 MiB of
garbage made a dead letter over Faust's 1 MB producer limit, so none was written.
"""

from __future__ import annotations

import json

import pytest

from framewatch import records
from framewatch.records import Alert, DeadLetter, Decision
from framewatch.settings import Settings
from framewatch.settings.deadletters import FAUST_MAX_REQUEST_BYTES
from tests.streams.helpers import scores
from tests.streams.worker import Worker, collect, produce

pytestmark = pytest.mark.integration

RED = {"child_safety.csam": 0.95}


def poisoned(stream: str, captured_at: str) -> tuple[str, bytes]:
    """A red-line scores record whose captured_at is replaced by raw JSON text."""
    body = json.loads(records.encode(scores(0, stream, cats=RED, account="acct-" + stream)))
    body["captured_at"] = "@@"
    raw = json.dumps(body).replace('"@@"', captured_at)
    return stream, raw.encode()


async def test_poison_scores_are_dead_lettered_and_the_worker_goes_on(
    settings: Settings, worker: Worker
) -> None:
    garbage = b"{" + b"\xff" * (3 * 1024 * 1024)
    items = [
        poisoned("past", "-1e18"),
        poisoned("future", "1e13"),
        poisoned("nan", "NaN"),
        ("garbage", garbage),
    ]
    good = scores(0, "good", cats=RED, account="acct-good", t0=records.now())
    items.append((good.stream_id, records.encode(good)))
    await produce(settings, items)

    out = await collect(settings, "dead_letters", want=4, worker=worker)
    dead = [d for d in out if isinstance(d, DeadLetter)]
    assert sorted(d.key or "" for d in dead) == ["future", "garbage", "nan", "past"]
    for d in dead:
        assert len(records.encode(d)) < FAUST_MAX_REQUEST_BYTES
        assert d.source_topic == settings.topics.name("scores") and d.payload_sha256
    junk = next(d for d in dead if d.key == "garbage")
    assert junk.payload_truncated and junk.payload_size == len(garbage)
    assert junk.payload == garbage[: settings.dead_letters.payload_max_bytes]

    # the worker is still deciding: the good red-line stream is blocked and paged
    decisions = [d for d in await collect(settings, "decisions", want=1, worker=worker)]
    assert [(d.stream_id, d.action) for d in decisions if isinstance(d, Decision)] == [
        ("good", "block")
    ]
    alerts = [a for a in await collect(settings, "alerts", want=1, worker=worker)]
    assert [a.stream_id for a in alerts if isinstance(a, Alert)] == ["good"]
    assert worker.proc is not None and worker.proc.poll() is None
