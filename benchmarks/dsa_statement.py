"""Benchmark: microseconds to build and validate one DSA statement of reasons.

A red-line block builds its statement on the hot path (the streams worker), so validation must
stay cheap. The ceiling printed alongside is constructing the same model with validation skipped
(``model_construct``): what building costs when nothing is checked. No broker needed. Each
figure is the best of --repeat rounds (the machine is shared; the best round is the least
disturbed). The last line is one JSON object.

    python benchmarks/dsa_statement.py --n 20000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# run as a script, this file's folder comes first on sys.path and its name hides the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
sys.modules.pop("streams", None)

from framewatch import taxonomy  # noqa: E402
from framewatch.records import Decision, Reason, StatementOfReasons  # noqa: E402
from framewatch.settings import load_settings  # noqa: E402
from streams import statement  # noqa: E402


def _block(i: int) -> Decision:
    return Decision(
        decision_id=f"d{i}",
        stream_id="s1",
        account_id="a1",
        action="block",
        previous_state="ok",
        reasons=[
            Reason(
                category="child_safety.csam",
                score=0.9,
                threshold=0.5,
                frames_seen=1,
                frames_window=1,
                rule="default:child_safety",
                source="model",
            )
        ],
        red_line=True,
        policy_version="p1",
        first_frame_id="f0",
        captured_at=1.79e9,
        decided_at=1.79e9,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000, help="statements to build per round")
    ap.add_argument("--repeat", type=int, default=5, help="rounds; the best one is reported")
    args = ap.parse_args()
    tax, settings = taxonomy.load(), load_settings()
    blocks = [_block(i) for i in range(args.n)]
    fields = statement.for_decision(blocks[0], tax, settings).model_dump()  # warm caches
    us = ceiling = float("inf")
    for _ in range(args.repeat):
        t = time.perf_counter()
        for d in blocks:
            statement.for_decision(d, tax, settings)
        us = min(us, (time.perf_counter() - t) / args.n * 1e6)
        t = time.perf_counter()
        for _ in range(args.n):
            StatementOfReasons.model_construct(**fields)
        ceiling = min(ceiling, (time.perf_counter() - t) / args.n * 1e6)
    print(f"build + validate: {us:.1f} us/statement (best of {args.repeat} x {args.n})")
    print(f"ceiling (model_construct, no validation): {ceiling:.1f} us/statement")
    print(json.dumps({"us_per_statement": round(us, 2), "ceiling_us": round(ceiling, 2),
                      "n": args.n, "repeat": args.repeat}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
