"""Hostile requests to the check API, each served by a fresh `check-api` process: peak RSS and CPU.

Imported by benchmarks/torture.py (one table, one JSON line). The child process builds the real
app with the configured models (as `framewatch check-api` does), answers on 127.0.0.1, and
reports the CPU seconds it spent between "ready" and the parent's "done" (the request alone,
not the start-up); the parent reads the child's peak RSS with ``os.wait4``. Authentication is
off in the child (``check_require_api_key=false``): what is measured is the request's cost.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY_JPEG = base64.b64decode(  # a 1x1 JPEG of 160 bytes: about the finding's 152-byte part
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwc"
    "KDcpLDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAA"
    "AAAAAAAAAAD/2gAIAQEAAD8AKp//2Q=="
)


def _tiny_parts(n: int) -> bytes:
    url = "data:image/jpeg;base64," + base64.b64encode(TINY_JPEG).decode()
    part = {"type": "image_url", "image_url": {"url": url}}
    return json.dumps({"input": [part] * n}).encode()


def many_parts() -> tuple[str, bytes]:
    """21 MB of JSON (under the body limit) of one-pixel image parts: the finding's request."""
    return "/v1/moderations", _tiny_parts(21_000_000 // (len(_tiny_parts(1)) - 11))


def max_parts() -> tuple[str, bytes]:
    """As many one-pixel image parts as a request may have (default 8): all of them scored."""
    from framewatch.settings import load_settings

    return "/v1/moderations", _tiny_parts(load_settings().scoring.check_max_parts)


def deep_json_moderations() -> tuple[str, bytes]:
    """100k-deep JSON (a 500 before)."""
    return "/v1/moderations", b'{"input":' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def deep_json_check() -> tuple[str, bytes]:
    return "/v1/check", b'{"image_url":' + b"[" * 100_000 + b"]" * 100_000 + b"}"


CASES: dict[str, Callable[[], tuple[str, bytes]]] = {
    "api-many-parts": many_parts,
    "api-max-parts": max_parts,
    "api-deep-json-moderations": deep_json_moderations,
    "api-deep-json-check": deep_json_check,
}
LEGITIMATE = frozenset({"api-max-parts"})  # real work, bounded by the settings: no CPU ceiling


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child() -> int:
    """Runs in the child: serve the check API until the parent says "done"."""
    import logging

    logging.disable(logging.CRITICAL)
    from aiohttp import web

    from framewatch.settings import load_settings
    from scoring.api import app
    from scoring.service import build_scorer

    s = load_settings(scoring={"check_require_api_key": False})

    async def main() -> None:
        runner = web.AppRunner(app(s, build_scorer(s)), handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        await asyncio.sleep(1.0)  # let start-up work (bank watch) settle before measuring
        t0 = _cpu()
        print(f"ready {port}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        print(f"cpu {_cpu() - t0:.3f}", flush=True)
        await runner.cleanup()

    asyncio.run(main())
    return 0


def measure(case: str, timeout: float) -> dict[str, object]:
    path, body = CASES[case]()
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, __file__, "--child"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    line = proc.stdout.readline().decode().split()
    outcome = "(no answer)"
    if line[:1] == ["ready"]:
        conn = http.client.HTTPConnection("127.0.0.1", int(line[1]), timeout=timeout)
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            msg = json.loads(r.read()).get("error", {}).get("message", "")
            outcome = f"{r.status} {msg[:70]}"
        except (OSError, ValueError) as e:
            outcome = f"failed: {type(e).__name__}"
        finally:
            conn.close()
    proc.stdin.write(b"done\n")
    proc.stdin.flush()
    rest = proc.stdout.read().decode().split()
    cpu = float(rest[1]) if rest[:1] == ["cpu"] else -1.0
    _, status, usage = os.wait4(proc.pid, 0)
    return {
        "case": case,
        "path": "api",
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "cpu_s": round(cpu, 2),
        "request_mib": round(len(body) / 2**20, 1),
        "exit": os.waitstatus_to_exitcode(status),
        "outcome": outcome,
        "seconds": round(time.monotonic() - t0, 2),
    }


if __name__ == "__main__":
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
    sys.exit(child() if sys.argv[1:] == ["--child"] else 2)
