"""The real servers as child processes (`framewatch ...`) on free ports, for the security tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from framewatch.local import free_port, port_open
from framewatch.settings import Settings, to_env

ROUTING = """\
sinks:
  platform: {{type: webhook, url: "{url}", secret: "{secret}", timeout_s: 1}}
routes:
  - name: platform
    match: {{types: [alert, enforcement]}}
    sinks: [platform]
"""


@contextmanager
def serve(
    settings: Settings, *args: str, port_env: str, log: Path, **env: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run `framewatch ARGS` with these settings; yield its base URL once the port answers."""
    port = free_port()
    full = {**os.environ, **to_env(settings), port_env: str(port), **env}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "framewatch.cli", *args],
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not port_open(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"framewatch {' '.join(args)} did not start:\n{log.read_text()}"
                )
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
