"""Scores builders shared by the streams tests."""

from __future__ import annotations

from typing import Any

from framewatch.records import HashMatch, Scores


def scores(seq: int, stream: str = "s1", t0: float = 1000.0, dt: float = 1.0, **kw: Any) -> Scores:
    cats = kw.pop("cats", {})
    matches = [HashMatch(**m) for m in kw.pop("matches", [])]
    return Scores(
        frame_id=f"{stream}-f{seq}",
        stream_id=stream,
        account_id=kw.pop("account", "acct1"),
        seq=seq,
        captured_at=t0 + seq * dt,
        scored_at=t0 + seq * dt + 0.05,
        scores=cats,
        hash_matches=matches,
        **kw,
    )
