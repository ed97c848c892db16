"""Lane order (per key, red lines first) and the commit point (never past an open record)."""

from __future__ import annotations

import asyncio

from alerts.lanes import Lane, job
from framewatch.offsets import Offsets


async def test_red_lines_go_first_and_one_key_keeps_its_order() -> None:
    lane = Lane("s", workers=1)
    gate = asyncio.Event()
    done: list[str] = []

    def run(name: str, wait: bool = False):  # type: ignore[no-untyped-def]
        async def go() -> str:
            if wait:
                await gate.wait()
            done.append(name)
            return name

        return go

    lane.put(job("k0", False, run("busy", wait=True)))  # holds the only worker
    await asyncio.sleep(0)
    lane.put(job("k1", False, run("plain-1")))
    lane.put(job("k2", False, run("trigger-2")))
    lane.put(job("k2", True, run("resolve-2")))  # red, but behind its own key's trigger
    last = job("k3", True, run("red-3"))
    lane.put(last)
    gate.set()
    await asyncio.wait_for(last.done, 5)
    await asyncio.sleep(0.05)
    await lane.close()
    assert done == ["busy", "red-3", "plain-1", "trigger-2", "resolve-2"]


def test_commit_point_stays_at_the_first_open_record() -> None:
    o = Offsets()
    for off in (10, 11, 12):
        o.read("p0", off)
    o.done("p0", 11)
    assert o.commit_points() == {"p0": 10}
    o.done("p0", 10)
    assert o.commit_points() == {"p0": 12}
    o.done("p0", 12)
    assert o.commit_points() == {"p0": 13} and o.open_count() == 0
    o.forget(["p0"])
    assert o.commit_points() == {}


def test_only_assigned_partitions_that_moved_are_due() -> None:
    o = Offsets()
    for tp in ("p0", "p1"):
        o.read(tp, 5)
        o.done(tp, 5)
    assert o.due({"p0", "p1"}) == {"p0": 6, "p1": 6}
    o.committed({"p0": 6, "p1": 6})
    assert o.due({"p0", "p1"}) == {}  # nothing moved since
    o.read("p0", 6)
    o.retain({"p0"})  # a rebalance took p1: its new owner re-reads
    assert o.commit_points() == {"p0": 6} and o.due({"p0"}) == {}
    o.done("p0", 6)
    assert o.due({"p0"}) == {"p0": 7}
