"""What the pull egress guard costs: an HLS pull read by FFmpeg directly and through the guard.

Both passes open the same HLS VOD (a sample video remuxed, ~1 s segments) from an aiohttp server
on loopback with PyAV and demux every packet (no decoding: the guard's cost is per byte and per
request, and decoding would hide it). The ceiling is the direct read; the guarded pass goes
through ``ingest/egress.py``'s proxy (one checked connection per request). Printed: wall and CPU
seconds of this process per pass (the proxy runs in it), and the overhead per segment.

Usage: ``python benchmarks/egress.py [--repeat N]``. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import av
from aiohttp import web

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from devkit.testdata import video  # noqa: E402
from ingest.egress import Egress  # noqa: E402


def make_hls(folder: Path) -> Path:
    playlist = folder / "live.m3u8"
    with (
        av.open(str(video("doorknob-hd-no-bar.mp4"))) as inp,
        av.open(str(playlist), "w", format="hls", options={"hls_time": "1", "hls_list_size": "0"})
        as out,
    ):  # fmt: skip
        ins = inp.streams.video[0]
        outs = out.add_stream_from_template(ins)
        for packet in inp.demux(ins):
            if packet.dts is not None:
                packet.stream = outs
                out.mux(packet)
    return playlist


def read_all(url: str, options: dict[str, str]) -> int:
    with av.open(url, options=options, timeout=(10, 10)) as c:
        return sum(p.size for p in c.demux(c.streams.video[0]))


async def measure(url: str, repeat: int, guarded: bool) -> dict[str, float]:
    egress = Egress(url, allow_private=True) if guarded else None
    options: dict[str, str] = {}
    if egress is not None:
        await egress.start()
        options = egress.plan().options
    wall0, cpu0 = time.monotonic(), time.process_time()
    size = 0
    for _ in range(repeat):
        size += await asyncio.to_thread(read_all, url, options)
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    if egress is not None:
        await egress.close()
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "mb": round(size / 1e6, 2)}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20, help="reads of the whole playlist a pass")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_hls(folder)
        segments = len(list(folder.glob("*.ts")))
        app = web.Application()
        app.router.add_static("/hls/", folder)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}/hls/live.m3u8"
        direct = await measure(url, args.repeat, guarded=False)
        guarded = await measure(url, args.repeat, guarded=True)
        await runner.cleanup()
    requests = args.repeat * (segments + 1)
    per_req_ms = (guarded["cpu_s"] - direct["cpu_s"]) / requests * 1000
    print(f"{args.repeat} reads of a {segments}-segment HLS playlist ({direct['mb']} MB in all)")
    print(f"ceiling (FFmpeg direct): {direct['wall_s']} s wall, {direct['cpu_s']} s CPU")
    print(f"through the egress guard: {guarded['wall_s']} s wall, {guarded['cpu_s']} s CPU")
    print(f"guard overhead: {per_req_ms:.2f} ms CPU per request (aiohttp server CPU included)")
    print(json.dumps({"segments": segments, "repeat": args.repeat, "direct": direct,
                      "guarded": guarded, "overhead_cpu_ms_per_request": round(per_req_ms, 2)}))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
