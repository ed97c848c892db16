"""The fault suite's stack and its selection rule.

Every test here is marked ``faults``. A plain ``pytest`` runs only those also marked
``quick`` (they fit the default budget of a few minutes on 2 cores); ``pytest -m faults``
(nightly) or FRAMEWATCH_FAULTS=all runs every scenario. Scenarios restart and kill the broker
and Redis, so they get their own (``fault_stack``), never the session's shared ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devkit.faults import Stack
from framewatch.settings import load_settings


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = "faults" in (config.option.markexpr or "") or os.environ.get("FRAMEWATCH_FAULTS")
    if wanted:
        return
    skip = pytest.mark.skip(reason="nightly fault scenario: run with `pytest -m faults` or "
                            "`framewatch selftest --faults`")  # fmt: skip
    for item in items:
        if item.get_closest_marker("faults") and not item.get_closest_marker("quick"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Kafka (with a proxied listener) + Redis of the fault suite, on free ports."""
    stack = Stack(load_settings(), tmp_path_factory.mktemp("faults")).start()
    yield stack
    stack.stop()
