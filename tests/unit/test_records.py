"""Records round-trip exactly; anything else is the one clear error."""

from __future__ import annotations

import json

import pytest

from framewatch import records
from framewatch.errors import RecordDecodeError
from tests.samples import sample_records


@pytest.mark.parametrize("rec", sample_records(), ids=lambda r: r.TYPE)
def test_round_trip_is_exact(rec: records._Record) -> None:
    data = records.encode(rec)
    back = records.decode(data)
    assert back == rec
    assert records.encode(back) == data


def test_frame_carries_raw_jpeg_not_base64() -> None:
    frame = next(r for r in sample_records() if isinstance(r, records.Frame))
    data = records.encode(frame)
    assert data.endswith(frame.jpeg)  # the JPEG bytes travel as they are
    assert len(data) < len(frame.jpeg) + 600


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\xff\xfe",
        b"not json",
        b"[1,2,3]",
        b"{}",
        b'{"type":"scores"}',
        b"FWF",
        b"FWF\x01\xff\xff\xff\xff{}",
        b'{"type":"nope","v":1}',
        b"{" * 100000,
    ],
    ids=range(10),
)
def test_garbage_is_one_clear_error(data: bytes) -> None:
    with pytest.raises(RecordDecodeError) as err:
        records.decode(data)
    assert err.value.reason in {"malformed", "unknown_type", "unsupported_version", "invalid"}
    assert str(err.value)


def test_future_version_is_refused_with_upgrade_hint() -> None:
    rec = next(r for r in sample_records() if isinstance(r, records.Decision))
    body = json.loads(records.encode(rec))
    body["v"] = 99
    with pytest.raises(RecordDecodeError, match="upgrade framewatch") as err:
        records.decode(json.dumps(body).encode())
    assert err.value.reason == "unsupported_version"
    frame = next(r for r in sample_records() if isinstance(r, records.Frame))
    data = bytearray(records.encode(frame))
    data[3] = 99
    with pytest.raises(RecordDecodeError, match="version 99"):
        records.decode(bytes(data))


def test_wrong_type_for_topic_is_refused() -> None:
    rec = next(r for r in sample_records() if isinstance(r, records.Alert))
    with pytest.raises(RecordDecodeError, match="expected a scores record"):
        records.decode(records.encode(rec), expect=records.Scores)


def test_invalid_field_names_the_field() -> None:
    rec = next(r for r in sample_records() if isinstance(r, records.Scores))
    body = json.loads(records.encode(rec))
    body["scores"]["sexual"] = 7.0
    with pytest.raises(RecordDecodeError, match="scores"):
        records.decode(json.dumps(body).encode())


def test_stable_ids_are_deterministic() -> None:
    assert records.stable_id("s1", "block", "f1") == records.stable_id("s1", "block", "f1")
    assert records.stable_id("s1", "block", "f1") != records.stable_id("s1", "review", "f1")
