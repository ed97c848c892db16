"""Property-based: any bytes decode to a record or to the one clear error, never anything else."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framewatch import records
from framewatch.errors import RecordDecodeError
from tests.samples import sample_records

SEEDS = [records.encode(r) for r in sample_records()]


def _decode_or_clear_error(data: bytes) -> None:
    try:
        rec = records.decode(data)
    except RecordDecodeError as exc:
        assert exc.reason in {"malformed", "unknown_type", "unsupported_version", "invalid"}
        return
    assert records.decode(records.encode(rec)) == rec  # whatever decodes, round-trips


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    _decode_or_clear_error(data)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SEEDS), st.integers(0, 10_000), st.binary(min_size=1, max_size=8))
def test_mutated_valid_records(seed: bytes, pos: int, junk: bytes) -> None:
    pos %= len(seed)
    _decode_or_clear_error(seed[:pos] + junk + seed[pos + len(junk) :])
    _decode_or_clear_error(seed[:pos])  # truncated


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(records.JSON_RECORDS)),
    st.dictionaries(st.text(max_size=12), json_values, max_size=8),
)
def test_json_objects_of_every_type(rtype: str, body: dict[str, object]) -> None:
    body = {"type": rtype, "v": 1, **body}
    _decode_or_clear_error(json.dumps(body).encode())
