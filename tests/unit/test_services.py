"""The core knows stages only through their registrations (entry point framewatch.services)."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

from framewatch.services import ServiceError, consumers, select, service, services
from framewatch.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_each_stage_registers_its_services_named_after_itself() -> None:
    """One service a stage, named after it; the scoring stage adds the check API, which
    consumes no topic (so the pipeline the demo and the fault suite run is unchanged)."""
    names = ["ingest", "scoring", "streams", "alerts", "console", "check-api"]
    assert [s.name for s in services()] == names
    assert [s.name for s in consumers()] == ["scoring", "streams", "alerts"]
    assert service("check-api").args == ("check-api",) and service("check-api").consumes is None
    s = load_settings(topics={"prefix": "p."})
    assert service("streams").group(s) == "p.framewatch-streams"  # type: ignore[misc]
    assert service("scoring").consumes == "frames"


def test_unknown_names_list_the_registered_ones() -> None:
    with pytest.raises(
        ServiceError, match="registered: ingest, scoring, streams, alerts, console, check-api"
    ):
        service("scorer")
    with pytest.raises(ServiceError, match="unknown service\\(s\\) score in --only"):
        select("score,streams")


def test_the_core_and_the_devkit_name_no_stage_service_by_string() -> None:
    """No string literal "scorer"/"score" as a service name left in the core or devkit code."""
    for folder in ("framewatch", "devkit"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in {
                    "proc", "kill", "restart", "cleared", "metric", "start",
                }:  # fmt: skip
                    names = [a.value for a in node.args if isinstance(a, ast.Constant)]
                    assert not {"score", "scorer"} & set(names), f"{path}: {names}"


def test_every_registered_signal_is_a_metric_the_stage_exports() -> None:
    """The fault suite reads signals by role; each must name a real metric sample."""
    import importlib

    from framewatch.metrics import stage_registry

    for mod in ("scoring.service", "scoring.cache", "alerts.router", "streams.policy"):
        importlib.import_module(mod)
    for svc in services():
        # counters without their _total
        families = {fam.name for fam in stage_registry(svc.name).collect()}
        for signal, selector in svc.signals.items():
            name = selector.split("{", 1)[0].removesuffix("_total")
            assert name in families, f"{svc.name}.{signal}: {name} is not exported"


def test_a_stage_started_from_a_folder_holding_another_framewatch_runs_this_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m` puts the working directory first on sys.path: a service started from a
    folder with another (or a planted) ``framewatch/`` in it must still run this install."""
    planted = tmp_path / "framewatch"
    planted.mkdir()
    (planted / "__init__.py").write_text("raise SystemExit('the planted framewatch ran')\n")
    (planted / "cli.py").write_text("")
    monkeypatch.chdir(tmp_path)
    out = subprocess.run(
        [*service("ingest").argv(), "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "planted" not in out.stderr and "--realtime" in out.stdout
