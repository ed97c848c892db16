"""The checked-in JSON Schemas match the code, and records validate against them."""

from __future__ import annotations

import json

import jsonschema
import pytest

from framewatch import records
from framewatch.schemagen import SCHEMA_DIR, filename, render
from tests.samples import sample_records


@pytest.mark.parametrize("rtype", records.DOWNSTREAM_RECORDS)
def test_checked_in_schema_matches_code(rtype: str) -> None:
    path = SCHEMA_DIR / filename(rtype)
    assert path.exists(), f"run python -m framewatch.schemagen ({path} missing)"
    assert path.read_text() == render(rtype), "schema drifted: run python -m framewatch.schemagen"


@pytest.mark.parametrize(
    "rec",
    [r for r in sample_records() if r.TYPE in records.DOWNSTREAM_RECORDS],
    ids=lambda r: r.TYPE,
)
def test_encoded_records_validate_and_bad_ones_do_not(rec: records._Record) -> None:
    schema = json.loads((SCHEMA_DIR / filename(rec.TYPE)).read_text())
    body = json.loads(records.encode(rec))
    jsonschema.Draft202012Validator(schema).validate(body)
    body["v"] = rec.VERSION + 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(body)
    body["v"] = rec.VERSION
    body["unexpected"] = True
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(body)
