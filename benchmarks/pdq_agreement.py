"""How far framewatch's PDQ of decoded video frames is from Meta's vPDQ reference hashes.

For each bundled sample video, every frame is decoded with PyAV (``to_ndarray("rgb24")``, as
ingest does) and hashed with ``framewatch.pdq.hash_rgb``; frame N is compared with line N of
Meta's reference file (``devkit/data/vpdq/NAME.txt``, made by the reference vPDQ implementation).
Frames whose reference quality is below 50 are left out, as vPDQ matching leaves them out.

Prints, per video, the frames compared and the median, 95th percentile and maximum Hamming
distance (of 256 bits; PDQ's usual match threshold is 31). The last line is one JSON object.
Usage: ``python benchmarks/pdq_agreement.py [--min-quality 50]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import av

from devkit.testdata import testdata_dir
from framewatch.pdq import hash_rgb


def reference(name: str) -> dict[int, tuple[int, str]]:
    """frame number -> (quality, hex) from Meta's ``frame,quality,hash,timestamp`` lines."""
    out = {}
    for line in (testdata_dir() / "vpdq" / f"{name}.txt").read_text().splitlines():
        n, q, h, _ = line.split(",")
        out[int(n)] = (int(q), h)
    return out


def measure(name: str, min_quality: int) -> dict[str, object]:
    ref = reference(name)
    dists = []
    with av.open(str(testdata_dir() / "videos" / f"{name}.mp4")) as c:
        for n, frame in enumerate(c.decode(video=0)):
            q_ref, h_ref = ref.get(n, (0, ""))
            if q_ref < min_quality:
                continue
            h, _ = hash_rgb(frame.to_ndarray(format="rgb24"))
            dists.append((int(h, 16) ^ int(h_ref, 16)).bit_count())
    dists.sort()
    return {
        "video": name,
        "frames": len(dists),
        "median_bits": float(statistics.median(dists)) if dists else None,
        "p95_bits": dists[int(0.95 * (len(dists) - 1))] if dists else None,
        "max_bits": max(dists) if dists else None,
        "within_31": sum(d <= 31 for d in dists),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--min-quality", type=int, default=50, help="reference quality (default 50)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = []
    for path in sorted((testdata_dir() / "vpdq").glob("*.txt")):
        r = measure(path.stem, args.min_quality)
        rows.append(r)
        print(
            f"{r['video']:<28} frames={r['frames']:<4} median={r['median_bits']} "
            f"p95={r['p95_bits']} max={r['max_bits']} (bits of 256; match threshold 31)",
            file=sys.stderr,
        )
    print(f"ceiling: identical decoders give 0 bits; took {time.perf_counter() - t0:.1f}s",
          file=sys.stderr)  # fmt: skip
    print(json.dumps({"benchmark": "pdq_agreement", "min_quality": args.min_quality,
                      "videos": rows}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
