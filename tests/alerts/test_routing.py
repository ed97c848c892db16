"""The routing file is checked at start and errors point at the line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.routing import RoutingError, load, parse
from framewatch import records


def test_example_file_is_valid() -> None:
    r = load(Path(__file__).parents[2] / "deploy" / "alerts.example.yaml")
    assert r.wanted_types() == {"alert", "enforcement", "review"}


def test_unknown_sink_type_names_line_and_field() -> None:
    text = "sinks:\n  a:\n    type: pager\n    url: http://x\nroutes:\n  - {name: r, sinks: [a]}\n"
    with pytest.raises(RoutingError, match=r"<routing>:3: sinks\.a\.type"):
        parse(text)


def test_route_naming_missing_sink_is_refused() -> None:
    text = "sinks:\n  a: {type: slack, url: 'http://x'}\nroutes:\n  - {name: r, sinks: [nope]}\n"
    with pytest.raises(RoutingError, match="'nope'"):
        parse(text)


def test_match_on_prefix_severity_and_red_line() -> None:
    r = parse(
        "sinks:\n  a: {type: slack, url: 'http://x'}\nroutes:\n"
        "  - {name: csam, match: {category_prefix: [csam], severity: [critical]}, sinks: [a]}\n"
        "  - {name: any, sinks: [a]}\n"
    )
    a = records.Alert(incident_id="i", severity="critical", category="csam.match", red_line=True,
                      stream_id="s", account_id="a", summary="x", captured_at=1, raised_at=1)  # fmt: skip
    assert [x.name for x in r.routes_for(a)] == ["csam", "any"]
    b = a.model_copy(update={"category": "csamx", "severity": "critical"})
    assert [x.name for x in r.routes_for(b)] == ["any"]
