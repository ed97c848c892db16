"""/metrics is optional: a taken port is reported, not fatal; port_dir binds without a race."""

from __future__ import annotations

import logging
import socket
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from framewatch import metrics


def test_a_taken_port_is_logged_and_the_process_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    # an outgoing connection's source port blocks a listener there, as in the fault suite
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    taken = client.getsockname()[1]
    try:
        with caplog.at_level(logging.ERROR):
            assert metrics.serve("unit-taken", "127.0.0.1", taken) is None
    finally:
        client.close()
        server.close()
    assert "WITHOUT /metrics" in caplog.text and str(taken) in caplog.text
    assert REGISTRY.get_sample_value("framewatch_metrics_bind_failed", {"stage": "unit-taken"}) == 1


def test_port_dir_binds_a_kernel_chosen_port_and_says_which(tmp_path: Path) -> None:
    bound = metrics.serve("unit-dir", "127.0.0.1", 0, port_dir=tmp_path)
    assert bound and metrics.served_port(tmp_path, "unit-dir") == bound
    with urllib.request.urlopen(f"http://127.0.0.1:{bound}/metrics", timeout=5) as r:
        assert b"framewatch_up" in r.read()


def test_port_zero_without_port_dir_serves_nothing(tmp_path: Path) -> None:
    assert metrics.serve("unit-off", "127.0.0.1", 0) is None
    assert metrics.served_port(tmp_path, "unit-off") is None
