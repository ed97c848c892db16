"""`python -m framewatch.healthcheck`: the container image's one HEALTHCHECK, right for any service.

It reads the command line of the container's main process (PID 1, or the PIDs given), finds which
framewatch service that is, and probes that service's /metrics port. A one-shot command (such as
`topics create`) or `--help` is healthy by definition. Exit 0 healthy, 1 not.
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

from framewatch import services
from framewatch.settings import load_settings


def service_of(argv: list[str]) -> services.Service | None:
    """The framewatch service whose arguments end this command line, if any."""
    for svc in services.services():
        n = len(svc.args)
        if any(tuple(argv[i : i + n]) == svc.args for i in range(len(argv) - n + 1)):
            return svc
    return None


def cmdline(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def main(argv: list[str] | None = None) -> int:
    pids = [int(a) for a in (argv if argv is not None else sys.argv[1:])] or [1]
    settings = load_settings()
    for pid in pids:
        svc = service_of(cmdline(pid))
        if svc is None:
            continue
        port = svc.metrics_port(settings)
        url = f"http://127.0.0.1:{port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                if resp.status != 200:
                    print(f"{svc.name}: {url} answered {resp.status}", file=sys.stderr)
                    return 1
        except OSError as exc:
            print(f"{svc.name}: {url} unreachable: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
