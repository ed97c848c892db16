"""How far framewatch's PDQ of decoded video frames is from Meta's vPDQ reference hashes.

For each bundled sample video, every frame is decoded with PyAV and hashed three ways: as ingest
does (``ingest.framedata.frame_pdq``: the luma plane reduced to PDQ's 64x64 in numpy), as banks
and stills are (``framewatch.pdq.hash_rgb`` of ``to_ndarray("rgb24")``, reduced the same way)
and by pdqhash's C++ on every pixel (``hash_rgb(..., full_frame=True)``, ingest's
``pdq_full_frame``); frame N is compared with line N of Meta's reference file
(``devkit/data/vpdq/NAME.txt``, made by the reference vPDQ implementation). Frames whose
reference quality is below 50 are left out, as vPDQ matching leaves them out.

Prints, per video and way, the frames compared and the median, 95th percentile and maximum
Hamming distance (of 256 bits; PDQ's usual match threshold is 31), and the CPU ms a frame of
each way. The last line is one JSON object.
Usage: ``python benchmarks/pdq_agreement.py [--min-quality 50]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import av

# benchmarks/ingest.py sits beside this file: keep the folder off sys.path so `ingest` is the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from devkit.testdata import testdata_dir  # noqa: E402
from framewatch.pdq import hash_rgb  # noqa: E402
from ingest.framedata import frame_pdq  # noqa: E402

WAYS = {
    "ingest_luma": lambda frame, rgb: frame_pdq(frame),
    "rgb_reduced": lambda frame, rgb: hash_rgb(rgb),
    "full_frame": lambda frame, rgb: hash_rgb(rgb, full_frame=True),
}


def reference(name: str) -> dict[int, tuple[int, str]]:
    """frame number -> (quality, hex) from Meta's ``frame,quality,hash,timestamp`` lines."""
    out = {}
    for line in (testdata_dir() / "vpdq" / f"{name}.txt").read_text().splitlines():
        n, q, h, _ = line.split(",")
        out[int(n)] = (int(q), h)
    return out


def summary(dists: list[int]) -> dict[str, object]:
    dists = sorted(dists)
    return {
        "median_bits": float(statistics.median(dists)) if dists else None,
        "p95_bits": dists[int(0.95 * (len(dists) - 1))] if dists else None,
        "max_bits": max(dists) if dists else None,
        "within_31": sum(d <= 31 for d in dists),
    }


def measure(name: str, min_quality: int) -> dict[str, object]:
    ref = reference(name)
    dists: dict[str, list[int]] = {way: [] for way in WAYS}
    cpu = dict.fromkeys(WAYS, 0.0)
    with av.open(str(testdata_dir() / "videos" / f"{name}.mp4")) as c:
        for n, frame in enumerate(c.decode(video=0)):
            q_ref, h_ref = ref.get(n, (0, ""))
            if q_ref < min_quality:
                continue
            rgb = frame.to_ndarray(format="rgb24")
            for way, fn in WAYS.items():
                t0 = time.process_time()
                h, _ = fn(frame, rgb)
                cpu[way] += time.process_time() - t0
                dists[way].append((int(h, 16) ^ int(h_ref, 16)).bit_count())
    frames = len(dists["full_frame"])
    return {
        "video": name,
        "frames": frames,
        **{way: {**summary(d), "cpu_ms": round(1000 * cpu[way] / max(1, frames), 2)}
           for way, d in dists.items()},
    }  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--min-quality", type=int, default=50, help="reference quality (default 50)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = []
    for path in sorted((testdata_dir() / "vpdq").glob("*.txt")):
        r = measure(path.stem, args.min_quality)
        rows.append(r)
        for way in WAYS:
            w = r[way]
            print(
                f"{r['video']:<24} {way:<12} frames={r['frames']:<4} median={w['median_bits']} "
                f"p95={w['p95_bits']} max={w['max_bits']} (bits of 256; match threshold 31) "
                f"{w['cpu_ms']} CPU ms a frame",
                file=sys.stderr,
            )
    print(f"ceiling: identical decoders give 0 bits; took {time.perf_counter() - t0:.1f}s",
          file=sys.stderr)  # fmt: skip
    print(json.dumps({"benchmark": "pdq_agreement", "min_quality": args.min_quality,
                      "videos": rows}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
