"""Each fault scenario on the real pipeline: nothing lost, nothing twice, strikes exact.

The figures of each run are printed (pytest -s) and attached to the report; docs/faults.md
has the table. Only scenarios marked quick run by default (see conftest.py).
"""

from __future__ import annotations

import pytest

from devkit.faults import SCENARIOS, Stack, run_scenario, table

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]


@pytest.mark.timeout(420)
@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=[pytest.mark.quick] if s.quick else []) for n, s in SCENARIOS.items()],
)
async def test_fault(name: str, fault_stack: Stack, record_property) -> None:  # type: ignore[no-untyped-def]
    before, after = (10.0, 10.0) if SCENARIOS[name].quick else (15.0, 15.0)
    fig = await run_scenario(fault_stack, SCENARIOS[name], print, before, after)
    record_property("figures", fig.as_dict())
    print("\n" + table([fig]))
    assert fig.sampled > 0
    assert fig.unscored == 0, "sampled frames never scored"
    assert fig.dup_decisions == 0 and fig.dup_pages == 0, "duplicates after de-dup by id"
    assert fig.missed_pages == 0, "a red-line block was never paged"
    assert fig.strikes_miscounted == 0, "the ledger disagrees with the block decisions"
    assert fig.strikes > 0, "the offender was never struck: the load did not exercise the ledger"
    assert not fig.problems, fig.problems
    assert fig.recover_s is not None
