"""Offsets a consumer may commit when its records finish out of order (at-least-once).

A stage that handles several records at once (the alert router's delivery lanes, the scorer's
frames in flight) must never commit past a record it has not finished: the commit point of a
partition is its first open offset, or the next one to read when none is open.
"""

from __future__ import annotations

import bisect
from typing import Any


class Offsets:
    """Per partition: the offsets whose jobs are still open, and the next offset to read.

    ``commit_points`` gives, per partition, the first offset not yet fully handled.
    """

    def __init__(self) -> None:
        self._open: dict[Any, list[int]] = {}
        self._next: dict[Any, int] = {}
        self._committed: dict[Any, int] = {}

    def read(self, tp: Any, offset: int) -> None:
        """A record was read; it stays open until :meth:`done`."""
        bisect.insort(self._open.setdefault(tp, []), offset)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def done(self, tp: Any, offset: int) -> None:
        opened = self._open.get(tp)
        if opened:
            i = bisect.bisect_left(opened, offset)
            if i < len(opened) and opened[i] == offset:
                opened.pop(i)

    def open_count(self) -> int:
        return sum(len(v) for v in self._open.values())

    def forget(self, tps: Any) -> None:
        """Partitions taken away by a rebalance: their new owner re-reads what is open."""
        for tp in tps:
            self._open.pop(tp, None)
            self._next.pop(tp, None)

    def commit_points(self) -> dict[Any, int]:
        return {tp: (self._open[tp][0] if self._open.get(tp) else nxt)
                for tp, nxt in self._next.items()}  # fmt: skip

    def retain(self, assigned: Any) -> None:
        """Keep only the ``assigned`` partitions: a rebalance took the others, and their new
        owner re-reads what is open there."""
        gone = [tp for tp in self._next if tp not in assigned]
        self.forget(gone)
        for tp in gone:
            self._committed.pop(tp, None)

    def due(self, assigned: Any) -> dict[Any, int]:
        """The commit points of ``assigned`` partitions that moved since :meth:`committed`."""
        return {tp: o for tp, o in self.commit_points().items()
                if tp in assigned and self._committed.get(tp) != o}  # fmt: skip

    def committed(self, points: dict[Any, int]) -> None:
        self._committed.update(points)
