"""Which models run on a frame: cheap ones on every frame, costly ones on a cadence or when a
cheap one is suspicious, under a per-frame budget (``scoring.frame_budget_ms``).

A CPU scorer cannot run every model on every frame of every stream: the face-age model costs
more than both classifiers together. Each manifest declares ``cost_ms`` (ms a frame on one CPU
core, measured). The models that fit the budget together, cheapest first, run on every frame;
the others run on every ``scoring.costly_every``-th sample of a stream (at the stream's own
:func:`phase`), and on any frame where a cheap model's score reaches ``scoring.suspicion`` (so the possible-minor check runs exactly
where a sexual score makes it matter). A model of undeclared cost always runs. With no budget,
or on a GPU, everything runs on every frame. Pure functions; :mod:`scoring.scorer` applies them.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    """Model refs that run on every frame, and those that run on a cadence."""

    every_frame: tuple[str, ...]
    costly: tuple[str, ...] = ()


def plan(costs: Mapping[str, float | None], budget_ms: float | None, on_gpu: bool) -> Plan:
    """Split models (ref -> declared cost, None: unknown) into every-frame and costly ones."""
    if budget_ms is None or on_gpu:
        return Plan(tuple(costs))
    cheap = [r for r, c in costs.items() if c is None]  # unknown cost: never skipped
    spent = 0.0
    for ref, cost in sorted(((r, c) for r, c in costs.items() if c is not None),
                            key=lambda rc: (rc[1], rc[0])):  # fmt: skip
        if spent + cost > budget_ms:
            break
        cheap.append(ref)
        spent += cost
    return Plan(tuple(r for r in costs if r in cheap), tuple(r for r in costs if r not in cheap))


def suspicious(scores: Mapping[str, float], threshold: float) -> bool:
    """A cheap model's score worth a closer look (signals such as faces do not count)."""
    return any(v >= threshold for c, v in scores.items() if not c.startswith("signal."))


def phase(tenant: str, stream_id: str, every: int) -> int:
    """The sample (0..every-1) a stream's every-Nth work falls on, the same for a stream on
    every scorer. Streams that start together (a scorer restart, a burst of go-lives) number
    their samples alike; with one phase for all, each would run its costly models (or read its
    text) on the same sample, and the scorer would take a whole burst at once every N samples."""
    return zlib.crc32(repr((tenant, stream_id)).encode()) % max(every, 1)


def run_costly(seq: int | None, every: int, is_suspicious: bool, phase: int = 0) -> bool:
    """Whether this frame gets the costly models: no stream position (a one-off check), the
    stream's cadence (``seq % every == phase``), or suspicion."""
    return seq is None or is_suspicious or every <= 1 or (seq - phase) % every == 0
