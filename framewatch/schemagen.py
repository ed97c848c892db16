"""Write the JSON Schemas of the downstream records to framewatch/schemas/.

Run ``python -m framewatch.schemagen`` after changing a record; a test fails while the checked-in
files differ from what the code generates.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from framewatch.records import ALL_RECORDS, DOWNSTREAM_RECORDS

SCHEMA_DIR = Path(__file__).parent / "schemas"


def json_schema(record_type: str) -> dict[str, Any]:
    """The published JSON Schema of a record type, including ``type`` and ``v``."""
    cls = ALL_RECORDS[record_type]
    schema = cls.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://framewatch.dev/schemas/{record_type}.v{cls.VERSION}.json"
    schema["properties"] = {
        "type": {"const": record_type, "type": "string"},
        "v": {"const": cls.VERSION, "type": "integer"},
        **schema["properties"],
    }
    schema["required"] = ["type", "v", *schema.get("required", [])]
    schema["additionalProperties"] = False
    return schema


def render(record_type: str) -> str:
    return json.dumps(json_schema(record_type), indent=2, sort_keys=True) + "\n"


def filename(record_type: str) -> str:
    return f"{record_type}.v{ALL_RECORDS[record_type].VERSION}.json"


def main() -> int:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for rtype in DOWNSTREAM_RECORDS:
        (SCHEMA_DIR / filename(rtype)).write_text(render(rtype))
        print(SCHEMA_DIR / filename(rtype))
    return 0


if __name__ == "__main__":
    sys.exit(main())
