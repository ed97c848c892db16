"""The faust-streaming internals streams/guard.py and streams/lag.py rely on still exist.

guard.drain_before_commit wraps ProducerBuffer._send_pending and replaces flush (reading size,
state and message_sent); lag.LagExporter reads Consumer._committed_offset and highwaters. These
are private, as are Consumer._unacked_messages and seek (guard.in_order), and the current-event
context variable streams/app_audit.py sets to save a chain head from a callback: pyproject pins faust-streaming to the minor version checked here, and this test
fails first when an upgrade moves them (then adapt guard.py / lag.py, and the pin).
"""

from __future__ import annotations

import inspect

import faust
import pytest
from faust.transport.producer import ProducerBuffer


@pytest.fixture
def app() -> faust.App:
    return faust.App("private-attrs-probe", broker="kafka://127.0.0.1:1")


def test_producer_buffer_has_what_the_commit_guard_wraps(app: faust.App) -> None:
    buf = app.producer.buffer
    assert isinstance(buf, ProducerBuffer) and not app.conf.producer_threaded
    for name in ("_send_pending", "flush", "size", "state", "message_sent"):
        assert hasattr(buf, name), f"faust ProducerBuffer lost {name}: adapt streams/guard.py"
    assert list(inspect.signature(buf._send_pending).parameters) == ["fut"]


def test_consumer_has_what_the_lag_exporter_reads(app: faust.App) -> None:
    cons = app.consumer
    assert isinstance(cons._committed_offset, dict), "adapt streams/lag.py"
    assert callable(cons.highwaters) and callable(cons.assignment)


def test_consumer_has_what_the_offset_guard_uses(app: faust.App) -> None:
    cons = app.consumer
    assert hasattr(cons._unacked_messages, "discard"), "adapt streams/guard.in_order"
    assert inspect.iscoroutinefunction(cons.seek), "adapt streams/guard.in_order"
    assert hasattr(app.on_partitions_assigned, "connect"), "adapt streams/guard.contiguous"
    assert hasattr(app.on_partitions_revoked, "connect"), "adapt streams/guard.deferred_writes"
    assert hasattr(app.on_rebalance_complete, "connect"), "adapt streams/guard.contiguous"
    assert hasattr(app, "rebalancing") and hasattr(cons, "flow_active"), "adapt watch_stalls"
    assert hasattr(app.topics, "on_message"), "adapt streams/guard.watch_stalls"


def test_what_the_audit_head_save_uses(app: faust.App) -> None:
    import contextvars

    import faust.streams

    var = faust.streams._current_event
    assert isinstance(var, contextvars.ContextVar), "adapt streams/app_audit.py save()"
    table = app.Table("probe", default=None)
    params = list(inspect.signature(table.send_changelog).parameters)
    assert params[:3] == ["partition", "key", "value"], "adapt streams/app_audit.py save()"
    assert hasattr(table, "data")


def test_the_pin_covers_the_checked_version() -> None:
    from importlib.metadata import requires, version

    pin = next(r for r in requires("framewatch") or [] if r.startswith("faust-streaming"))
    bounds = set(pin.removeprefix("faust-streaming").replace(" ", "").split(","))
    assert bounds == {">=0.15.3", "<0.16"}, pin
    assert version("faust-streaming").startswith("0.15.")
