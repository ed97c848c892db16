"""Hash banks (disallow lists) of PDQ hashes: Redis store, in-memory index, stream matching.

Redis (AOF-persisted) layout, all under the settings' redis prefix:
  banks                      HASH name -> JSON {threshold, role, category}
  bank:<name>:entries        HASH entry_id -> JSON {kind, note, count}
  bank:<name>:hashes         HASH entry_id -> raw 32-byte PDQ hashes concatenated
  banks:changed              pub/sub channel; scorers reload their index on any message
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import numpy as np
import redis
import tenacity
from prometheus_client import Counter

from framewatch import records, redisio, taxonomy
from framewatch.errors import TaxonomyError
from framewatch.metrics import stage_registry
from framewatch.settings import Settings
from scoring import hashfiles, pdq
from scoring.errors import BankError
from scoring.hashindex import HammingIndex

log = logging.getLogger(__name__)
Role = Literal["red_line", "review"]
BANK_WATCH_ERRORS = Counter(
    "framewatch_scoring_bank_watch_errors_total",
    "bank watch lost Redis: matching goes on with the last loaded in-memory index",
    registry=stage_registry("scoring"),
)


@dataclass(frozen=True)
class Bank:
    name: str
    threshold: int
    role: Role
    category: str


class BankStore:
    """Bank CRUD against Redis; every change is published so scorers refresh."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.s = settings
        self.r = client or redisio.sync_client(settings)

    def k(self, *parts: str) -> str:
        return redisio.key(self.s, *parts)

    @property
    def channel(self) -> str:
        return self.k("banks", "changed")

    def create(self, name: str, role: Role, category: str, threshold: int | None = None) -> Bank:
        try:
            taxonomy.load().validate(category)
        except TaxonomyError as e:
            raise BankError(f"bank {name}: --category: {e}") from None
        if role not in ("red_line", "review"):
            raise BankError(f"bank {name}: --role must be red_line or review, not {role!r}")
        old = self.get(name)
        thr = (
            threshold
            if threshold is not None
            else (old.threshold if old else self.s.scoring.bank_threshold)
        )
        bank = Bank(name, thr, role, category)
        self.r.hset(self.k("banks"), name, json.dumps(
            {"threshold": thr, "role": role, "category": category}))  # fmt: skip
        return bank

    def get(self, name: str) -> Bank | None:
        raw = self.r.hget(self.k("banks"), name)
        if raw is None:
            return None
        d = json.loads(raw)
        return Bank(name, int(d["threshold"]), d["role"], d["category"])

    def banks(self) -> list[Bank]:
        return [b for n in sorted(self.r.hkeys(self.k("banks"))) if (b := self.get(n.decode()))]

    def add(self, bank: str, entry_id: str, hexes: list[str], kind: str, note: str = "",
            frames: list[tuple[int, int, float]] | None = None) -> int:  # fmt: skip
        """One entry; ``frames`` keeps a vPDQ file's (frame, quality, time) per hash."""
        if self.get(bank) is None:
            raise BankError(f"no bank named {bank!r}: create it with --role and --category")
        words = pdq.to_words(hexes)
        if not len(words):
            raise BankError(f"entry {entry_id}: no hashes to add")
        meta: dict[str, object] = {"kind": kind, "note": note, "count": len(words)}
        if frames:
            meta["frames"] = [list(f) for f in frames]
        pipe = self.r.pipeline()
        pipe.hset(self.k("bank", bank, "hashes"), entry_id, words.astype(">u8").tobytes())
        pipe.hset(self.k("bank", bank, "entries"), entry_id, json.dumps(meta))
        pipe.execute()
        return len(words)

    def entries(self, bank: str, entry_id: str | None = None) -> list[hashfiles.Entry]:
        """The entries of a bank (or one of them) with their hashes, sorted by id."""
        if self.get(bank) is None:
            raise BankError(f"no bank named {bank!r}: see `framewatch bank list`")
        metas = self.r.hgetall(self.k("bank", bank, "entries"))
        blobs = self.r.hgetall(self.k("bank", bank, "hashes"))
        out = []
        for eid in sorted(metas):
            if entry_id is not None and eid.decode() != entry_id:
                continue
            m = json.loads(metas[eid])
            blob = blobs.get(eid, b"")  # 32 bytes a hash, most significant first
            hexes = [blob[i : i + 32].hex() for i in range(0, len(blob), 32)]
            frames = [(int(n), int(q), float(t)) for n, q, t in m.get("frames", [])] or None
            kind = "video" if m["kind"] == "video" else "hash"
            out.append(hashfiles.Entry(eid.decode(), hexes, kind, m.get("note", ""), frames))
        if entry_id is not None and not out:
            raise BankError(f"bank {bank} has no entry {entry_id!r}: see `framewatch bank list`")
        return out

    def add_entries(self, bank: str, entries: list[hashfiles.Entry]) -> int:
        """Many entries (a hash file), pipelined; returns the hashes added."""
        if self.get(bank) is None:
            raise BankError(f"no bank named {bank!r}: create it with --role and --category")
        pipe = self.r.pipeline(transaction=False)
        total = 0
        for i, e in enumerate(entries):
            meta: dict[str, object] = {"kind": e.kind, "note": e.note, "count": len(e.hexes)}
            if e.frames:
                meta["frames"] = [list(f) for f in e.frames]
            blob = pdq.to_words(e.hexes).astype(">u8").tobytes()
            pipe.hset(self.k("bank", bank, "hashes"), e.entry_id, blob)
            pipe.hset(self.k("bank", bank, "entries"), e.entry_id, json.dumps(meta))
            total += len(e.hexes)
            if i % 10000 == 9999:
                pipe.execute()
        pipe.execute()
        return total

    def remove(self, bank: str, entry_id: str | None = None) -> int:
        """Remove one entry, or the whole bank when entry_id is None. Returns entries removed."""
        if entry_id is not None:
            n = self.r.hdel(self.k("bank", bank, "entries"), entry_id)
            self.r.hdel(self.k("bank", bank, "hashes"), entry_id)
            return int(n)
        n = self.r.hlen(self.k("bank", bank, "entries"))
        self.r.delete(self.k("bank", bank, "entries"), self.k("bank", bank, "hashes"))
        self.r.hdel(self.k("banks"), bank)
        return int(n)

    def counts(self) -> list[dict[str, object]]:
        out = []
        for b in self.banks():
            entries = self.r.hvals(self.k("bank", b.name, "entries"))
            hashes = sum(json.loads(e)["count"] for e in entries)
            out.append({"name": b.name, "role": b.role, "category": b.category,
                        "threshold": b.threshold, "entries": len(entries), "hashes": hashes})  # fmt: skip
        return out

    def notify(self) -> None:
        self.r.publish(self.channel, b"changed")

    def load(self) -> BankIndex:
        """All banks as one in-memory index."""
        chunks, rows_entry, rows_thr = [], [], []
        entries: list[tuple[Bank, str, str]] = []
        for b in self.banks():
            meta = self.r.hgetall(self.k("bank", b.name, "entries"))
            for eid, blob in self.r.hgetall(self.k("bank", b.name, "hashes")).items():
                m = meta.get(eid)
                if m is None:
                    continue
                w = np.frombuffer(blob, dtype=">u8").astype(np.uint64).reshape(-1, 4)
                chunks.append(w)
                rows_entry.append(np.full(len(w), len(entries), np.int32))
                rows_thr.append(np.full(len(w), b.threshold, np.uint16))
                entries.append((b, eid.decode(), json.loads(m)["kind"]))
        if not chunks:
            return BankIndex.empty()
        return BankIndex(np.concatenate(chunks), np.concatenate(rows_entry),
                         np.concatenate(rows_thr), entries,
                         self.s.scoring.bank_index_threads)  # fmt: skip


async def watch(
    settings: Settings, store: BankStore, on_index: Callable[[BankIndex], None]
) -> None:
    """Load the index, then again whenever a bank changes (pub/sub); runs until cancelled.

    Every reader of banks (the scorer, the check API) holds one in-memory index this keeps
    fresh, so no request or frame reads Redis. On a Redis outage the last index stays in use.
    """

    def lost(rs: tenacity.RetryCallState) -> None:
        BANK_WATCH_ERRORS.inc()
        log.warning(
            "bank watch lost Redis (%s); retrying in 1 s", rs.outcome and rs.outcome.exception()
        )

    async for attempt in tenacity.AsyncRetrying(  # Redis restarts: keep the last index, retry
        retry=tenacity.retry_if_exception_type(Exception),  # not a cancel
        wait=tenacity.wait_fixed(1.0),
        before_sleep=lost,
    ):
        with attempt:
            await _follow(settings, store, on_index)


async def _follow(
    settings: Settings, store: BankStore, on_index: Callable[[BankIndex], None]
) -> None:
    """One subscription: load now (changes while away), then on every change message."""
    loop = asyncio.get_running_loop()
    client = redisio.async_client(settings)
    try:
        async with client.pubsub() as ps:
            await ps.subscribe(store.channel)
            on_index(await loop.run_in_executor(None, store.load))
            while True:  # get_message with a timeout: listen() can swallow a cancel
                msg = await ps.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if msg is not None and msg["type"] == "message":
                    on_index(await loop.run_in_executor(None, store.load))
    finally:
        await client.aclose()


@dataclass
class Hit:
    bank: Bank
    entry_id: str
    kind: str
    distance: int


class BankIndex:
    """Every banked hash in one multi-index (:mod:`scoring.hashindex`): exact, sub-linear lookups."""

    def __init__(self, words: np.ndarray, row_entry: np.ndarray, row_thr: np.ndarray,
                 entries: list[tuple[Bank, str, str]], threads: int = 1) -> None:  # fmt: skip
        self.hashes = HammingIndex(words, threads)
        self.max_thr = int(row_thr.max()) if len(row_thr) else 0
        self.row_entry = row_entry
        self.row_thr = row_thr
        self.entries = entries

    @classmethod
    def empty(cls) -> BankIndex:
        return cls(np.zeros((0, 4), np.uint64), np.zeros(0, np.int32), np.zeros(0, np.uint16), [])

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def nbytes(self) -> int:
        """Memory the index holds (hashes, tables, per-row entry and threshold)."""
        return self.hashes.nbytes + self.row_entry.nbytes + self.row_thr.nbytes

    def match(self, pdq_hex: str) -> list[Hit]:
        """Entries with a hash within their bank's threshold, with the best distance each."""
        if not len(self.hashes):
            return []
        q = pdq.to_words([pdq_hex])[0]
        rows, d = self.hashes.within(q, self.max_thr)
        ok = d <= self.row_thr[rows]
        best: dict[int, int] = {}
        for r, dist in zip(rows[ok].tolist(), d[ok].tolist(), strict=True):
            e = int(self.row_entry[r])
            best[e] = min(best.get(e, 256), dist)
        return [Hit(self.entries[e][0], self.entries[e][1], self.entries[e][2], dist)
                for e, dist in best.items()]  # fmt: skip


class StreamMatcher:
    """Turns per-frame hits into counted HashMatches.

    Image/hash entries count on one frame. A video entry counts when at least
    `min_frames` of the stream's last `window` frames matched it.
    """

    def __init__(self, window: int, min_frames: int) -> None:
        self.window = window
        self.min_frames = min_frames
        self.recent: dict[str, deque[set[tuple[str, str]]]] = defaultdict(
            lambda: deque(maxlen=window)
        )

    def observe(self, stream_key: str, hits: list[Hit]) -> list[records.HashMatch]:
        q = self.recent[stream_key]
        q.append({(h.bank.name, h.entry_id) for h in hits if h.kind == "video"})
        out = []
        for h in hits:
            if h.kind == "video":
                n = sum((h.bank.name, h.entry_id) in s for s in q)
                if n < self.min_frames:
                    continue
            out.append(records.HashMatch(bank=h.bank.name, entry_id=h.entry_id,
                                         distance=h.distance, threshold=h.bank.threshold,
                                         role=h.bank.role, category=h.bank.category))  # fmt: skip
        return out


def with_crops(bgr: np.ndarray, crops: list[float]) -> list[str]:
    """PDQ of the image and of its centre crops, so a slightly cropped copy still matches."""
    h, w = bgr.shape[:2]
    out = [pdq.compute(bgr)[0]]
    for c in crops:
        dy, dx = int(h * c), int(w * c)
        out.append(pdq.compute(bgr[dy : h - dy, dx : w - dx])[0])
    return out


def video_hashes(
    path: Path, interval_s: float, min_quality: int, crops: list[float] | None = None
) -> Iterator[tuple[float, str]]:
    """(pts seconds, PDQ hex) of frames every interval_s with quality >= min_quality.

    With `crops`, each kept frame also yields the hashes of its centre crops.
    """
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise BankError(f"cannot open video {path}: {e}") from None
    with container:
        stream = container.streams.video[0]
        next_t = 0.0
        for frame in container.decode(stream):
            t = float(frame.time or 0.0)
            if t + 1e-6 < next_t:
                continue
            next_t = t + interval_s
            img = frame.to_ndarray(format="bgr24")
            h, q = pdq.compute(img)
            if q >= min_quality:
                yield t, h
                for extra in with_crops(img, crops or [])[1:]:
                    yield t, extra
