"""The container files without an engine: what `make compose-test` then proves for real."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from framewatch.healthcheck import service_of
from framewatch.services import services

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def test_the_image_base_is_a_build_argument_and_it_runs_as_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE=python:3\.11-slim-bookworm$", text, re.M)
    assert "FROM ${BASE}" in text
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user and user[-1] not in ("root", "0")
    assert 'CMD ["python", "-m", "framewatch.healthcheck"]' in text


def test_the_image_healthcheck_knows_each_service_from_its_command_line() -> None:
    for svc in services():
        argv = ["/opt/venv/bin/python", "/opt/venv/bin/framewatch", *svc.args]
        found = service_of(argv)
        assert found is not None and found.name == svc.name
    assert service_of(["framewatch", "topics", "create"]) is None  # a one-shot: healthy
    assert service_of(["framewatch", "--help"]) is None


def test_the_local_override_builds_every_image_and_adds_only_the_receiver() -> None:
    base = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    local = yaml.safe_load((DEPLOY / "compose.local.yaml").read_text())["services"]
    assert set(local) - set(base) == {"hook"}
    for name in ("kafka", "redis", "prometheus"):
        dockerfile = ROOT / local[name]["build"]["dockerfile"]
        assert dockerfile.is_file(), dockerfile
        assert "FROM ${BASE}" in dockerfile.read_text()
    assert local["grafana"]["profiles"] == ["grafana"]  # no Debian package: not started
    routing = yaml.safe_load((DEPLOY / "container" / "ct" / "alerts.yaml").read_text())
    assert routing["sinks"]["hook"]["url"].startswith("http://hook:8090/")


def test_every_published_port_is_on_loopback() -> None:
    for name in ("compose.yaml", "compose.local.yaml"):
        services = yaml.safe_load((DEPLOY / name).read_text())["services"]
        for svc, spec in services.items():
            for port in spec.get("ports", []):
                assert str(port).startswith("127.0.0.1:"), f"{name}: {svc} publishes {port}"
