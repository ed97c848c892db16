"""The failure policy: records refuse impossible times and NaN, dead letters always fit."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from framewatch import deadletter, records
from framewatch.errors import RecordDecodeError
from framewatch.failures import Failures, decoder
from framewatch.settings.deadletters import DeadLetterSettings


def alert_body(**kw: Any) -> dict[str, Any]:
    a = records.Alert(
        incident_id="i", severity="critical", category="csam", red_line=True,
        stream_id="s", account_id="a", summary="x", captured_at=1.7e9, raised_at=1.7e9,
    )  # fmt: skip
    body = json.loads(records.encode(a))
    body.update(kw)
    return body


@pytest.mark.parametrize(
    "field,value", [("captured_at", -1e18), ("captured_at", 1e13), ("raised_at", 1e300)]
)
def test_times_outside_1970_2100_are_refused_by_the_decoder(field: str, value: float) -> None:
    raw = json.dumps(alert_body(**{field: value})).encode()
    with pytest.raises(RecordDecodeError, match=field) as exc:
        records.decode(raw, records.Alert)
    assert exc.value.reason == "invalid"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_nan_and_infinities_are_refused_in_every_json_record(literal: str) -> None:
    raw = json.dumps(alert_body(captured_at="@@")).replace('"@@"', literal).encode()
    with pytest.raises(RecordDecodeError) as exc:
        records.decode(raw)
    assert exc.value.reason == "malformed"


def test_a_record_never_encodes_nan() -> None:
    with pytest.raises(ValueError):
        records.Scores(
            frame_id="f", stream_id="s", account_id="a", seq=0, captured_at=1.7e9,
            scored_at=1.7e9, timings_ms={"infer": float("nan")},
        )  # fmt: skip


def test_a_dead_letter_keeps_the_first_bytes_the_size_and_the_digest() -> None:
    big = bytes(range(256)) * 40_000  # ~10 MB
    limits = DeadLetterSettings(payload_max_bytes=1000)
    msg = SimpleNamespace(topic="t", partition=1, offset=9, key=b"k" * 5000, value=big)
    d = deadletter.build("scoring", "malformed", "e" * 10_000, message=msg, limits=limits)
    assert d.payload == big[:1000] and d.payload_truncated and d.payload_size == len(big)
    assert d.payload_sha256 == hashlib.sha256(big).hexdigest()
    assert len(d.error) <= limits.error_max_chars and len(d.key or "") <= deadletter.KEY_MAX_CHARS
    assert deadletter.fit(d, limits) == d  # fitting again changes nothing
    assert len(records.encode(d)) < 16 * 1024


def test_the_default_dead_letter_fits_fausts_producer() -> None:
    d = deadletter.build("streams", "malformed", "x" * 100_000, payload=b"\xff" * 20_000_000)
    assert len(records.encode(d)) < 1_000_000


def test_a_payload_limit_that_cannot_fit_faust_is_refused() -> None:
    with pytest.raises(ValueError, match="1 MB"):
        DeadLetterSettings(payload_max_bytes=900_000)


async def test_policy_consumer_and_processing_errors_dead_letter_producer_errors_raise() -> None:
    sent: list[records.DeadLetter] = []

    async def send(d: records.DeadLetter) -> None:
        sent.append(d)

    f = Failures("test", DeadLetterSettings(), send)
    msg = SimpleNamespace(topic="alerts", partition=0, offset=3, key=b"k", value=b"junk")

    async def ok(rec: Any) -> str:
        return "handled"

    async def boom(rec: Any) -> None:
        raise OverflowError("date value out of range")

    async def kafka_down(rec: Any) -> None:
        raise KafkaTimeoutError()

    good = SimpleNamespace(**{**vars(msg), "value": json.dumps(alert_body()).encode()})
    assert await f.handle(msg, decoder(records.Alert), ok) is None
    assert await f.handle(good, decoder(records.Alert), ok) == "handled"
    assert await f.handle(good, decoder(records.Alert), boom) is None
    with pytest.raises(KafkaTimeoutError):
        await f.handle(good, decoder(records.Alert), kafka_down)
    assert [(d.reason, d.source_offset) for d in sent] == [
        ("malformed", 3),
        ("processing_failed", 3),
    ]
    assert "OverflowError: date value out of range" in sent[1].error
