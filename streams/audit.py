"""The tamper-evident audit chain: append links, verify a partition. Pure, no Faust, no I/O.

Each audit partition is one hash chain written by exactly one agent (the owner of the same
partition of the internal audit-in topic). A link is an :class:`~framewatch.records.AuditEntry`:

    hash = sha256(prev_hash + canonical JSON of {seq, prev_hash, record_type, record, written_at})

with ``seq`` counting from 0 and the first ``prev_hash`` = :data:`GENESIS`. Canonical JSON is
sorted keys, no spaces, UTF-8. ``written_at`` is the audit-in message's timestamp, so the link
built from one input is the same bytes every time it is built.

Guarantee (see docs/streams.md): the chain covers what was written to the audit topic. A replay
after a crash never forks it: the head remembers the audit-in offset it has chained up to and
skips inputs at or below it, and the saved head is never behind a committed audit-in offset.
The worker keeps up to ``streams.audit_in_flight`` links written but not yet covered by a
saved head (streams/audit_writer.py), so a replay re-sends at most that many links, each an
exact duplicate (same seq, prev_hash and hash: a link is built only from its input and the
previous link). :class:`Verifier` accepts and counts an exact re-send of any link within that
many seqs of the newest one; anything else out of line (another hash at a seq already seen, a
gap, a reorder) is reported as the first broken link.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from framewatch.records import AuditEntry, _Record

GENESIS = "0" * 64
BODY_FIELDS = ("seq", "prev_hash", "record_type", "record", "written_at")


def canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def link_hash(prev_hash: str, body: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(body)).hexdigest()


@dataclass
class Head:
    """The end of one partition's chain, kept in a Faust table keyed by partition."""

    seq: int = -1
    hash: str = GENESIS
    offset: int = -1  # the last audit-in offset chained (replays at or below it are skipped)

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "offset": self.offset}

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Head:
        return cls(**d) if d else cls()


def append(
    head: Head, rec: _Record, *, src_offset: int, written_at: float
) -> tuple[AuditEntry, Head] | None:
    """The next link for ``rec`` and the new head; None if this input is already chained."""
    if src_offset <= head.offset:
        return None
    body = {
        "seq": head.seq + 1,
        "prev_hash": head.hash,
        "record_type": rec.TYPE,
        "record": rec.model_dump(mode="json"),
        "written_at": written_at,
    }
    # hash what a reader will parse back, not Python objects (tuples, int-valued floats ...)
    body = json.loads(canonical(body))
    h = link_hash(head.hash, body)
    return AuditEntry(hash=h, **body), Head(body["seq"], h, src_offset)


@dataclass(frozen=True)
class Break:
    """The first link that does not hold, and why."""

    offset: int
    seq: int | None
    reason: str
    expected: str
    found: str

    def to_json(self) -> dict[str, Any]:
        return {
            "offset": self.offset,
            "seq": self.seq,
            "reason": self.reason,
            "expected": self.expected,
            "found": self.found,
        }


@dataclass
class Verifier:
    """Walks one partition's messages in offset order; stops at the first broken link.

    ``anchored`` means the partition still starts at offset 0, so the first link must be the
    genesis link; otherwise (older entries removed by retention) the first link read is trusted
    as the anchor and only the links after it are checked. ``window``: how far back (in seqs
    from the newest link) an exact re-send is accepted; at least the worker's
    ``streams.audit_in_flight``, the most links a replay or a producer retry re-sends.
    """

    partition: int
    anchored: bool = True
    window: int = 256
    entries: int = 0
    duplicates: int = 0
    first_seq: int | None = None
    head_seq: int | None = None
    head_hash: str | None = None
    broken: Break | None = None
    _prev: dict[str, Any] | None = field(default=None, repr=False)
    _recent: dict[int, str] = field(default_factory=dict, repr=False)  # seq -> hash, verified
    _order: deque[int] = field(default_factory=deque, repr=False)

    def feed(self, offset: int, raw: bytes | None) -> bool:
        """Check one message; False once the chain is broken (stop reading)."""
        if self.broken is not None:
            return False
        body, err = _parse(raw)
        if body is None:
            return self._break(offset, None, "unreadable entry", "an audit entry", err)
        seq, found = body["seq"], body["hash"]
        computed = link_hash(body["prev_hash"], {k: body[k] for k in BODY_FIELDS})
        if computed != found:
            return self._break(
                offset, seq, "hash does not match the entry's body (modified)", computed, found
            )
        prev = self._prev
        if prev is None:
            if self.anchored and (seq != 0 or body["prev_hash"] != GENESIS):
                return self._break(
                    offset,
                    seq,
                    "chain does not start at the genesis link",
                    f"seq 0, prev_hash {GENESIS}",
                    f"seq {seq}, prev_hash {body['prev_hash']}",
                )
            self.first_seq = seq
        elif seq <= prev["seq"]:
            known = self._recent.get(seq)
            if known == found:
                self.duplicates += 1  # an exact re-send of an earlier link (replay, retry)
                return True
            if known is not None:
                return self._break(
                    offset, seq, "another link with an earlier seq (forked)", known, found
                )
            return self._break(
                offset,
                seq,
                f"seq repeats a link more than {self.window} links back or before the first "
                "one read (not a re-send the worker can make)",
                f"seq after {max(prev['seq'] - self.window, -1)}",
                str(seq),
            )
        elif body["prev_hash"] != prev["hash"]:
            return self._break(
                offset,
                seq,
                "prev_hash is not the previous link's hash (link removed, reordered or forked)",
                prev["hash"],
                body["prev_hash"],
            )
        elif seq != prev["seq"] + 1:
            return self._break(offset, seq, "seq out of order", str(prev["seq"] + 1), str(seq))
        self._prev = {"seq": seq, "hash": found}
        self._remember(seq, found)
        self.entries += 1
        self.head_seq, self.head_hash = seq, found
        return True

    def _remember(self, seq: int, found: str) -> None:
        self._recent[seq] = found
        self._order.append(seq)
        while self._order and self._order[0] < seq - self.window + 1:
            del self._recent[self._order.popleft()]

    def _break(self, offset: int, seq: int | None, reason: str, exp: str, found: str) -> bool:
        self.broken = Break(offset, seq, reason, exp, found)
        return False

    def to_json(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "ok": self.broken is None,
            "entries": self.entries,
            "duplicates": self.duplicates,
            "first_seq": self.first_seq,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "break": self.broken.to_json() if self.broken else None,
        }


def _parse(raw: bytes | None) -> tuple[dict[str, Any] | None, str]:
    """The entry's JSON as written (hashing needs the parsed JSON, not a re-validated model)."""
    if raw is None:
        return None, "empty message"
    try:
        body = json.loads(raw)
        if not isinstance(body, dict) or body.get("type") != AuditEntry.TYPE:
            return None, f"not an audit entry: {str(body)[:80]}"
        AuditEntry.model_validate({k: v for k, v in body.items() if k not in ("type", "v")})
    except ValueError as exc:  # JSON or pydantic validation
        return None, str(exc).splitlines()[0][:200]
    return body, ""
