"""The multi-index finds exactly what a brute-force scan finds, at and around the threshold."""

from __future__ import annotations

import numpy as np
import pytest

from scoring import pdq
from scoring.banks import Bank, BankIndex
from scoring.hashindex import HammingIndex


def _flip(rng: np.random.Generator, row: np.ndarray, k: int, spread: bool) -> np.ndarray:
    """row with k bits flipped: spread evenly over the hash (the pigeonhole edge), or random."""
    bits = np.linspace(0, 255, k).astype(int) if spread else rng.choice(256, k, replace=False)
    out = row.copy()
    for b in bits:
        out[b // 64] ^= np.uint64(1) << np.uint64(b % 64)
    return out


def _brute(words: np.ndarray, q: np.ndarray, radius: int) -> tuple[list[int], list[int]]:
    d = pdq.distances(words, q)
    rows = np.nonzero(d <= radius)[0]
    return rows.tolist(), d[rows].tolist()


@pytest.mark.parametrize("n", [300, 70_000, 200_000])
def test_same_rows_and_distances_as_brute_force(n: int) -> None:
    rng = np.random.default_rng(n)
    words = rng.integers(0, 2**64 - 1, size=(n, 4), dtype=np.uint64, endpoint=True)
    # built on one thread, or side by side as a bank reload builds them
    index = HammingIndex(words, threads=1 if n == 300 else 3)
    if n == 200_000:  # 17- and 18-bit chunks: some straddle two 64-bit words
        assert any(a % 64 + w > 64 for a, w in zip(index.starts, index.widths, strict=True))
    queries = [rng.integers(0, 2**64 - 1, size=4, dtype=np.uint64, endpoint=True)
               for _ in range(20)]  # fmt: skip
    for k in [0, 1, 15, 16, 17, 30, 31, 32, 33, 40, 47, 48, 60]:
        for spread in (True, False):
            queries.append(_flip(rng, words[int(rng.integers(n))], k, spread))
    found = 0
    for radius in [0, 15, 31, 47, 63]:  # 0, 1, 2 flips a chunk and the scan fallback
        for q in queries:
            rows, d = index.within(q, radius)
            assert (rows.tolist(), d.tolist()) == _brute(words, q, radius), (radius, q)
            found += len(rows)
    assert found > 0  # the near duplicates are found, so the comparison is not vacuous


def test_an_empty_index_finds_nothing() -> None:
    assert BankIndex.empty().match("ab" * 32) == []
    rows, d = HammingIndex(np.zeros((0, 4), np.uint64)).within(np.zeros(4, np.uint64), 31)
    assert (len(rows), len(d)) == (0, 0)


def test_bank_threshold_is_inclusive_per_bank() -> None:
    rng = np.random.default_rng(7)
    words = rng.integers(0, 2**63, size=(5000, 4), dtype=np.uint64)
    strict, loose = Bank("s", 20, "red_line", "known_bad.csam_bank"), Bank("l", 31, "review",
                                                                           "known_bad.review_bank")  # fmt: skip
    entry = np.array([0] * 2500 + [1] * 2500, np.int32)
    thr = np.array([20] * 2500 + [31] * 2500, np.uint16)
    index = BankIndex(words, entry, thr, [(strict, "a", "hash"), (loose, "b", "hash")])
    at = lambda row, k: _flip(rng, words[row], k, True).astype(">u8").tobytes().hex()  # noqa: E731
    assert [(h.entry_id, h.distance) for h in index.match(at(10, 20))] == [("a", 20)]
    assert index.match(at(10, 21)) == []
    assert [(h.entry_id, h.distance) for h in index.match(at(4000, 31))] == [("b", 31)]
    assert index.match(at(4000, 32)) == []
