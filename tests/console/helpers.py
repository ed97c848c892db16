"""The console as a user meets it: a real console process, a plain HTTP session, sample frames."""

from __future__ import annotations

import http.cookiejar
import io
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import av

from devkit.testdata import video
from framewatch.settings import Settings
from tests.streams.worker import env_for

PASSWORD = "correct horse battery"  # reviewer alice's, in the pipeline fixtures (conftest.py)


def sample_jpegs(n: int, name: str = "chair-orig-22-sd-bar.mp4") -> list[bytes]:
    """``n`` thumbnails of a bundled sample video, as ingest would send them."""
    out: list[bytes] = []
    with av.open(str(video(name))) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i % 10:
                continue
            img = fr.to_image()
            img.thumbnail((384, 384))
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=80)
            out.append(buf.getvalue())
            if len(out) == n:
                break
    return out


def cli(settings: Settings, data_dir: Path, *args: str, stdin: str | None = None) -> str:
    p = subprocess.run(
        [sys.executable, "-m", "framewatch.cli", *args],
        env=env_for(settings, data_dir),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    return p.stdout


class ConsoleProc:
    """`framewatch console serve` as its own process on a free port."""

    def __init__(self, settings: Settings, data_dir: Path, port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        env = env_for(settings, data_dir)
        env["FRAMEWATCH_CONSOLE__PORT"] = str(port)
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "framewatch.cli", "console", "serve"],
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
        raise AssertionError("console not ready: " + self.log.read_text()[-3000:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Session:
    """A logged-in reviewer over plain HTTP (cookies, CSRF token from the pages)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> tuple[int, str]:
        try:
            with self.opener.open(self.base + path, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def post(self, path: str, form: dict[str, str]) -> tuple[int, str]:
        data = urllib.parse.urlencode(form).encode()
        try:
            with self.opener.open(self.base + path, data=data, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def login(self, name: str, password: str) -> None:
        _, page = self.get("/login")
        status, body = self.post("/login", {"csrf": csrf(page), "name": name,
                                            "password": password, "next": "/queue"})  # fmt: skip
        assert status == 200 and "Queue" in body, (status, body[:300])


def csrf(page: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m, "no CSRF token on the page"
    return m.group(1)
