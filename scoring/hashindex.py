"""Exact Hamming range search over 256-bit PDQ hashes by multi-index hashing (Norouzi et al.).

Each hash is cut into m chunks of about log2(N) bits (16 to 24: at 10M hashes, 11 chunks of
23 or 24 bits). If two hashes are within distance ``r`` then, by the pigeonhole principle, at
least one chunk differs in at most ``r // m`` bits. So a query looks up, in each chunk's table,
the buckets of every chunk value within ``r // m`` bits of its own, and confirms each candidate with its exact 256-bit distance: the result is the same
set as a brute-force scan, from a few thousand candidates instead of every hash.

A table is a counting sort: row ids ordered by chunk value, and bucket offsets, so a probe is
two array reads. Memory at 10M hashes: 32 B (hashes) + 44 B (row ids) a hash, plus 450 MB of
offsets (a bucket per 1 to 2 hashes). At radius 31 (the default threshold) a query makes about 3,100 probes. Above
``MAX_FLIPS`` bits a chunk the probes outnumber the rows they save, and the query falls back to
a vectorised scan (still exact). So do banks of at most ``SCAN_ROWS`` hashes, which get no
tables at all: a query's ~3,100 probes cost more than scanning that many rows.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from itertools import combinations

import numpy as np

MAX_FLIPS = 2  # probes a chunk at 2 flips: ~300; at 3: ~2,300, slower than the scan it saves
# up to this many rows a scan beats the tables at radius 31 (one query, this 2-core box: 100
# rows 0.008 against 0.34 ms, 10,000 rows 0.24 against 0.36; the tables win from ~13,000)
SCAN_ROWS = 8192


def _masks(width: int, flips: int) -> np.ndarray:
    """Every ``width``-bit mask with at most ``flips`` bits set."""
    out = [0]
    for k in range(1, flips + 1):
        out += [sum(1 << b for b in c) for c in combinations(range(width), k)]
    return np.array(out, np.int64)


def widths(n: int) -> list[int]:
    """Chunk widths for n hashes: about log2(n) bits (16..24), m = 256 // width chunks."""
    width = min(23, max(16, int(np.log2(max(n, 1)))))
    m = 256 // width
    base, extra = divmod(256, m)
    return [base + 1] * extra + [base] * (m - extra)


def chunk(words: np.ndarray, a: int, width: int) -> np.ndarray:
    """Bits a..a+width-1 of every row of (N, 4) uint64 (bit i is bit i % 64 of word i // 64)."""
    w, off = divmod(a, 64)
    val = words[:, w] >> np.uint64(off)
    if off + width > 64:
        val = val | (words[:, w + 1] << np.uint64(64 - off))
    return val & np.uint64((1 << width) - 1)


class HammingIndex:
    """Rows of an (N, 4) uint64 array within a Hamming radius of a query, exactly."""

    def __init__(self, words: np.ndarray, threads: int = 1) -> None:
        """``threads`` (0: one per core) build the chunk tables side by side (numpy's sort,
        shifts and counts release the GIL): 10M hashes in 6.2 instead of 11.3 s on two cores,
        each thread holding about 40 bytes a hash while it builds
        (settings scoring.bank_index_threads)."""
        self.words = np.ascontiguousarray(words, dtype=np.uint64)
        n = len(self.words)
        self.widths = widths(n) if n > SCAN_ROWS else []  # none: every query scans
        self.starts = [sum(self.widths[:i]) for i in range(len(self.widths))]
        ids = np.arange(n, dtype=np.uint64)

        def table(a: int, width: int) -> tuple[np.ndarray, np.ndarray]:
            key = chunk(self.words, a, width)
            # one SIMD sort of (key, row id) pairs: faster than argsort, same order
            packed = np.sort((key << np.uint64(32)) | ids)
            perm = packed.astype(np.uint32)  # the low 32 bits: the row ids
            del packed
            offs = np.zeros((1 << width) + 1, np.uint32)
            np.cumsum(np.bincount(key.view(np.int64), minlength=1 << width), out=offs[1:])
            return perm, offs

        workers = threads or os.cpu_count() or 1
        with ThreadPoolExecutor(workers, thread_name_prefix="hashindex") as pool:
            tables = list(pool.map(table, self.starts, self.widths))
        self.perm: list[np.ndarray] = [t[0] for t in tables]
        self.offsets: list[np.ndarray] = [t[1] for t in tables]
        self._masks = {(w, f): _masks(w, f) for w in set(self.widths) for f in range(MAX_FLIPS + 1)}

    def __len__(self) -> int:
        return len(self.words)

    @property
    def nbytes(self) -> int:
        return self.words.nbytes + sum(a.nbytes for a in [*self.perm, *self.offsets])

    def candidates(self, q: np.ndarray, radius: int) -> np.ndarray | None:
        """Row ids that may lie within ``radius`` of query q (a superset; may repeat), or None
        when every row must be scanned: a small index, or a radius too wide for the tables."""
        if not self.widths:
            return None
        flips = radius // len(self.widths)
        if flips > MAX_FLIPS:
            return None
        q2 = q.reshape(1, 4)
        parts = []
        for t, (a, width) in enumerate(zip(self.starts, self.widths, strict=True)):
            probes = int(chunk(q2, a, width)[0]) ^ self._masks[(width, flips)]  # int64
            offs = self.offsets[t]
            start = offs[probes].astype(np.int64)
            lengths = offs[probes + 1].astype(np.int64) - start
            hit = lengths > 0
            start, lengths = start[hit], lengths[hit]
            if not len(start):
                continue
            # positions start[i] .. start[i]+lengths[i]-1, concatenated, without a Python loop
            shift = np.repeat(start - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
            parts.append(self.perm[t][shift + np.arange(int(lengths.sum()))])
        return np.concatenate(parts) if parts else np.zeros(0, np.uint32)

    def within(self, q: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, exact distances) of every row within ``radius`` of q, each row once, sorted."""
        cand = self.candidates(q, radius)
        if cand is None:  # the scan: every row's exact distance
            d = np.bitwise_count(self.words ^ q).sum(axis=1, dtype=np.uint16)
            rows = np.nonzero(d <= radius)[0]
            return rows, d[rows]
        d = np.bitwise_count(self.words[cand] ^ q).sum(axis=1, dtype=np.uint16)
        keep = d <= radius
        rows, first = np.unique(cand[keep], return_index=True)
        return rows.astype(np.int64), d[keep][first]
