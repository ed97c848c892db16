"""The house rules, from the code: the core imports no wing, wings import only the core."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _house():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("house", ROOT / "tools" / "house.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_no_wing_imports_another_and_the_core_imports_none() -> None:
    house = _house()
    edges = house.imports()
    assert house.broken(edges) == []
    assert {src for src, _ in edges} >= {"ingest", "scoring", "streams", "alerts", "devkit"}


def test_the_rule_check_catches_a_stage_importing_a_stage() -> None:
    from collections import Counter

    house = _house()
    assert house.broken(Counter({("streams", "scoring"): 1, ("framewatch", "ingest"): 2})) == [
        "framewatch imports ingest (2 imports): only the core may be imported",
        "streams imports scoring (1 imports): only the core may be imported",
    ]
