"""Fault scenarios: the real pipeline under a steady live load, one fault each, counted.

Every scenario starts the four stages as real processes (devkit.demo.Pipeline) on its own
topic and Redis prefix of a Kafka + Redis stack started here on free ports (Stack), runs live
streams of the sample videos (looped, ingested with --realtime) plus a red-line offender who goes
live again every few seconds (each clip must be blocked, paged and struck exactly once), injects
one fault, then counts against the ground truth read from the topics:

- sampled frames (frames topic) that never got a Scores record (goal 0);
- duplicate decisions (a stream's transition repeated under another id), duplicate pages (an
  incident paged under two ids) and missed pages (a red-line block never paged) (goal 0);
- strikes miscounted: the account ledger vs the unique block decisions (goal 0);
- time to recover: from the fault clearing until the affected stage's consumer group has
  committed past everything that was waiting then (or, for sources, the next frame scored).

`framewatch selftest --faults` runs them and prints the table; tests/faults runs them in pytest.
"""

from devkit.faults.run import Figures, Run, Scenario, table
from devkit.faults.scenarios import SCENARIOS, run_all, run_scenario
from devkit.faults.stack import LiveTs, Stack

__all__ = [
    "SCENARIOS",
    "Figures",
    "LiveTs",
    "Run",
    "Scenario",
    "Stack",
    "run_all",
    "run_scenario",
    "table",
]
