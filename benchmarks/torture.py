"""Peak memory (RSS) of each hostile input of the media torture set, one child process each.

Every case of devkit/torture.py is written to a temporary file and run, in a fresh
child process, through the same decode path the product uses:

* videos: ``VideoSource`` + ``SampleEngine`` (decode, sample, PDQ, thumbnail), as in
  `framewatch ingest FILE`, without Kafka;
* images, ``push``: ``framewatch.images.decode`` + PDQ + thumbnail, as in the push API;
* images, ``check``: ``scoring.model.decode_image`` + PDQ, as in `framewatch check` (the model
  itself is left out: it sees a fixed-size resize, whatever the input);
* policy YAML, ``policy``: ``streams.policy.check_file``, as in `framewatch policy check` and a
  hot reload (a billion-laughs alias bomb, a 5,000-digit integer, non-UTF-8 bytes, 20k-deep
  nesting); these must also stay under ``--ceiling-cpu-s`` (default 2) CPU seconds.

The parent reads each child's own peak RSS with ``os.wait4`` (ru_maxrss, KiB on Linux) and
compares it with the ceiling: ``--ceiling-mib`` (default 768).

Hostile requests to the check API (benchmarks/torture_api.py: a 21 MB body of one-pixel image
parts, 100k-deep JSON on both endpoints) are each served by a fresh check API process; their rows
add the CPU seconds the request cost, against ``--ceiling-cpu-s`` (default 2). ``api-max-parts``
(a request with as many image parts as allowed, all scored) is the legitimate upper bound of one
request's work: reported, not held to the hostile ceiling. Inputs over the pixel limits
(default 40 Mpx) are refused from their header, before any pixel is decoded; an accepted image
costs ~10 bytes a pixel at its peak (decoded RGB, its array copy; PDQ runs on a copy shrunk to
2048 px), so the largest allowed image stays near baseline + 400 MiB. A ``baseline`` child
imports the same modules and decodes nothing. The last line is one JSON object.

Usage: ``python benchmarks/torture.py [--ceiling-mib 768] [--ceiling-cpu-s 2] [--case NAME ...]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# keep this folder off sys.path: benchmarks/ingest.py would shadow the `ingest` package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def _laughs() -> bytes:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [
        f"{n}: &{n} [{','.join(['*' + p] * 9)}]"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    return ("\n".join(lines) + "\n").encode()


# hostile policy files (issue 13 item 6), written by the parent: they are a few KB
YAML_CASES = {
    "yaml_alias_bomb": _laughs(),
    "yaml_huge_int": b"quiet_period_s: " + b"9" * 5000 + b"\n",
    "yaml_not_utf8": b"rules:\n  hate: {review: 0.5}\n  # caf\xe9\n",
    "yaml_deep_20000": b"rules: " + b"[" * 20000 + b"]" * 20000 + b"\n",
}


def child(case: str, path: str, route: str) -> int:
    """Runs in the child: one input through one path; prints the outcome."""
    import logging

    logging.disable(logging.CRITICAL)
    from framewatch import images
    from framewatch.images import ImageRejected
    from framewatch.settings import load_settings
    from ingest import framedata
    from ingest.engine import SampleEngine, StreamMeta
    from ingest.errors import IngestError
    from ingest.source import VideoSource
    from scoring import pdq
    from scoring.model import decode_image

    s = load_settings()
    if route == "policy":
        from framewatch import taxonomy
        from streams.policy import PolicyError, check_file

        try:
            check_file(Path(path), taxonomy.load())
            print("accepted")
        except PolicyError as exc:
            print(f"refused: {str(exc)[:90]}")
        return 0
    if route == "baseline":
        print("ok")
        return 0
    data = Path(path).read_bytes()
    try:
        if route == "video":
            engine = SampleEngine(s, StreamMeta(case, "acct"))
            with VideoSource(path) as src:
                n = sum(1 for _ in engine.process(src.frames()))
            print(f"ok: {n} samples, {src.decode_errors} decode errors")
        elif route == "push":
            rgb, _ = images.decode(data, max_bytes=s.ingest.push_max_bytes,
                                   max_pixels=s.ingest.push_max_pixels)  # fmt: skip
            framedata.photo_pdq(rgb)
            framedata.thumbnail_jpeg(rgb, s.ingest.thumbnail_short_side, s.ingest.jpeg_quality)
            print(f"ok: {rgb.shape[1]}x{rgb.shape[0]}")
        else:
            bgr = decode_image(data, s.scoring.max_image_pixels)
            pdq.compute_still(bgr)
            print(f"ok: {bgr.shape[1]}x{bgr.shape[0]}")
    except (IngestError, ImageRejected) as exc:
        print(f"refused: {type(exc).__name__}: {str(exc)[:90]}")
    return 0


def make(folder: str) -> int:
    """Runs in a child: write every case into `folder`, print the manifest. (Made here, not in
    the parent: a child inherits its parent's peak RSS through fork + exec on Linux.)"""
    from devkit.torture import ALL

    manifest = {}
    for name, c in ALL.items():
        path = str(Path(folder) / f"{name}{c.suffix}")
        Path(path).write_bytes(c.make())
        manifest[name] = {"kind": c.kind, "path": path, "what": c.what}
    print(json.dumps(manifest))
    return 0


def measure(case: str, path: str, route: str, timeout: float) -> dict[str, object]:
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", case, path, route],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    assert proc.stdout is not None
    out = proc.stdout.read().decode().strip()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "case": case,
        "path": route,
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "exit": proc.returncode,
        "outcome": out.splitlines()[-1] if out else "(no output: crashed)",
        "seconds": round(time.monotonic() - t0, 2),
    }


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        return child(*sys.argv[2:5])
    if len(sys.argv) == 3 and sys.argv[1] == "--make":
        return make(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ceiling-mib", type=float, default=768.0)
    ap.add_argument("--case", action="append", help="only these cases (default: all)")
    ap.add_argument("--ceiling-cpu-s", type=float, default=2.0, help="per policy file")
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "torture_api", Path(__file__).parent / "torture_api.py"
    )
    assert spec is not None and spec.loader is not None
    api = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(api)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        made = subprocess.run([sys.executable, __file__, "--make", tmp], capture_output=True,
                              check=True, cwd=REPO, timeout=args.timeout)  # fmt: skip
        manifest = json.loads(made.stdout.decode().strip().splitlines()[-1])
        rows.append(measure("baseline", "", "baseline", args.timeout))
        for name, raw in YAML_CASES.items():
            (Path(tmp) / f"{name}.yaml").write_bytes(raw)
            manifest[name] = {"kind": "policy", "path": str(Path(tmp) / f"{name}.yaml")}
        for name in args.case or list(manifest) + list(api.CASES):
            if name in api.CASES:
                rows.append(api.measure(name, args.timeout))
                continue
            c = manifest[name]
            if c["kind"] == "policy":
                rows.append(measure(name, c["path"], "policy", args.timeout))
                continue
            for route in ("video",) if c["kind"] == "video" else ("push", "check"):
                rows.append(measure(name, c["path"], route, args.timeout))
    print(f"{'case':<26} {'path':<8} {'peak RSS MiB':>12} {'CPU s':>6}  outcome")
    for r in rows:
        print(f"{r['case']:<26} {r['path']:<8} {r['peak_rss_mib']:>12} {r['cpu_s']:>6}  "
              f"{r['outcome']}")  # fmt: skip
    worst = max(rows, key=lambda r: float(r["peak_rss_mib"]))  # type: ignore[arg-type]
    crashed = [f"{r['case']}/{r['path']}" for r in rows if r["exit"] != 0]
    over = [f"{r['case']}/{r['path']}" for r in rows if float(r["peak_rss_mib"]) > args.ceiling_mib]  # type: ignore[arg-type]
    slow = [f"{r['case']}/{r['path']}" for r in rows
            if r["path"] == "policy" and float(r["cpu_s"]) > args.ceiling_cpu_s]  # type: ignore[arg-type]  # fmt: skip
    hostile = [r for r in rows if r["path"] == "api" and r["case"] not in api.LEGITIMATE]
    slow += [f"{r['case']}/api" for r in hostile if float(r["cpu_s"]) > args.ceiling_cpu_s]  # type: ignore[arg-type]
    crashed += [f"{r['case']}/api" for r in hostile if float(r["cpu_s"]) < 0]  # type: ignore[arg-type]
    worst_cpu = max((float(r["cpu_s"]) for r in hostile), default=0.0)  # type: ignore[arg-type]
    print(
        f"policy files and hostile check API requests: ceiling {args.ceiling_cpu_s:g} CPU s "
        f"each; worst request {worst_cpu:.2f} CPU s; over it: {slow or 'none'}"
    )
    print(f"ceiling {args.ceiling_mib:.0f} MiB per input; worst {worst['case']}/{worst['path']} "
          f"{worst['peak_rss_mib']} MiB; over the ceiling: {over or 'none'}; crashed: "
          f"{crashed or 'none'}")  # fmt: skip
    print(json.dumps({
        "benchmark": "torture", "ceiling_mib": args.ceiling_mib,
        "worst_hostile_cpu_s": worst_cpu,
        "baseline_mib": rows[0]["peak_rss_mib"], "worst_case": worst["case"],
        "worst_path": worst["path"], "worst_peak_rss_mib": worst["peak_rss_mib"],
        "over_ceiling": over, "crashed": crashed, "ceiling_cpu_s": args.ceiling_cpu_s,
        "over_cpu_ceiling": slow, "cases": rows,
    }))  # fmt: skip
    return 1 if over or crashed or slow else 0


if __name__ == "__main__":
    sys.exit(main())
