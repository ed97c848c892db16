"""`make compose-test`: build the images, run the compose stack, and prove it moderates.

Steps, each printed as it goes (a last line of JSON for machines):
1. the engine and the local Debian base (deploy/container/engine.sh: installs docker.io if
   missing, starts dockerd, debootstraps the base once);
2. build every image from that base and bring the stack up (compose.yaml + compose.local.yaml),
   waiting for every service's healthcheck;
3. the demo's scenario through the containers: the chair sample video into a red-line hash bank,
   the same video ingested as a stream, the block decision read from the decisions topic, the page
   at the `hook` webhook receiver;
4. Prometheus inside the stack has every framewatch target up and the alert rules loaded;
5. the stack goes down with nothing left behind.
On a failure it prints the failing service's last log lines and exits 1.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from framewatch.errors import FramewatchError
from framewatch.local import free_port
from framewatch.services import service, services

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
DOCKER = "/usr/bin/docker"  # Debian's client: the newer one some machines carry has no buildx
# the containers whose health the check waits for: the registered services by their names
SERVICES = ("kafka", "redis", *(s.name for s in services()), "hook", "prometheus")
CHAIR = "chair-orig-22-sd-bar.mp4"
SCORING = service("scoring").name  # the container that holds the models and bank commands


class ComposeTestError(FramewatchError):
    """A step of the compose check failed; `service` names whose logs explain it."""

    def __init__(self, message: str, service: str | None = None) -> None:
        super().__init__(message)
        self.service = service


class ServiceFailed(ComposeTestError):
    """A service exited or turned unhealthy: waiting longer will not help."""


def say(msg: str) -> None:
    print(f"compose-test: {msg}", file=sys.stderr, flush=True)


class Stack:
    """One compose project of the stack, with free host ports."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.ports = {
            name: free_port()
            for name in ("INGEST", "CHECK_API", "ALERTS", "PROMETHEUS", "GRAFANA", "HOOK")
        }
        self.env = {f"FRAMEWATCH_{k}_HOST_PORT": str(v) for k, v in self.ports.items()}

    def compose(self, *args: str, check: bool = True, timeout: float = 1200) -> str:
        cmd = ["docker-compose", "-p", self.project, "-f", str(DEPLOY / "compose.yaml"),
               "-f", str(DEPLOY / "compose.local.yaml"), *args]  # fmt: skip
        env = {**_environ(), **self.env, "DOCKER_BUILDKIT": "0", "COMPOSE_DOCKER_CLI_BUILD": "0"}
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise ComposeTestError(f"docker-compose {' '.join(args)} failed:\n{out.stderr[-3000:]}")
        return out.stdout

    def exec(self, service: str, *args: str, timeout: float = 300) -> str:
        try:
            return self.compose("exec", "-T", service, *args, timeout=timeout)
        except ComposeTestError as exc:
            raise ComposeTestError(str(exc), service) from None

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).strip()

    def health(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for svc in SERVICES:
            cid = self.container(svc)
            if not cid:
                out[svc] = "missing"
                continue
            fmt = "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}"
            state = _docker("inspect", "-f", fmt, cid).split()
            out[svc] = state[1] if len(state) > 1 else state[0]
        return out

    def logs(self, service: str, lines: int = 40) -> str:
        return self.compose("logs", "--no-color", "--tail", str(lines), service, check=False)


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)


def _docker(*args: str) -> str:
    out = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise ComposeTestError(f"docker {' '.join(args)} failed: {out.stderr.strip()[-500:]}")
    return out.stdout.strip()


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _until(what: str, probe: Any, timeout: float, service: str | None = None) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except ServiceFailed:
            raise
        except (OSError, ValueError, ComposeTestError) as exc:
            last = exc
        time.sleep(2)
    raise ComposeTestError(
        f"timed out after {timeout:.0f}s waiting for {what} (last: {last})", service
    )


def prepare() -> str:
    """Engine, base image, and the host's extra CA certificates; returns the base image id."""
    ca_dir = DEPLOY / "container" / "extra-ca"
    for crt in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        shutil.copy(crt, ca_dir / crt.name)
    out = subprocess.run(["bash", str(DEPLOY / "container" / "engine.sh")], capture_output=True,
                         text=True, timeout=900)  # fmt: skip
    sys.stderr.write(out.stderr)
    if out.returncode != 0:
        raise ComposeTestError(f"the container engine is not ready:\n{out.stderr[-2000:]}")
    return out.stdout.strip().splitlines()[-1]


def scenario(stack: Stack) -> dict[str, Any]:
    """The demo's red-line case through the containers; returns what it saw."""
    path = stack.exec(SCORING, "python", "-c",
                      f"from devkit.testdata import video; print(video({CHAIR!r}))").strip()  # fmt: skip
    say(f"banking {CHAIR} as red-line known-bad media")
    stack.exec(SCORING, "framewatch", "bank", "add", "ct-known-bad", "--video", path,
               "--role", "red_line", "--category", "known_bad.csam_bank")  # fmt: skip
    say("ingesting the same video as stream ct-chair")
    t0 = time.monotonic()
    stack.exec("ingest", "framewatch", "ingest", path, "--stream-id", "ct-chair",
               "--account-id", "ct-account")  # fmt: skip
    raw = stack.exec("streams", "framewatch", "tail", "decisions", "--from-start", "--json",
                     "--limit", "1", "--timeout", "180", timeout=240)  # fmt: skip
    decisions = [json.loads(line) for line in raw.splitlines() if line.startswith("{")]
    if not decisions:
        raise ComposeTestError("no decision reached the decisions topic", "streams")
    d = decisions[0]
    if d.get("action") != "block" or d.get("stream_id") != "ct-chair" or not d.get("red_line"):
        raise ComposeTestError(f"expected a red-line block of ct-chair, got {d}", "streams")
    say(f"decision: {d['action']} {d['stream_id']} red_line={d['red_line']}")
    hook = f"http://127.0.0.1:{stack.ports['HOOK']}/received"
    pages = _until("the page at the webhook receiver", lambda: _get_json(hook), 120, "alerts")
    say(f"webhook receiver got {len(pages)} record(s)")
    return {
        "decision": d["action"],
        "pages": len(pages),
        "ingest_to_page_s": round(time.monotonic() - t0, 1),
    }


def prometheus(stack: Stack) -> dict[str, Any]:
    base = f"http://127.0.0.1:{stack.ports['PROMETHEUS']}/api/v1"

    def all_up() -> list[dict[str, Any]] | None:
        targets = _get_json(f"{base}/targets")["data"]["activeTargets"]
        return targets if targets and all(t["health"] == "up" for t in targets) else None

    try:
        targets = _until("every Prometheus target up", all_up, 90, "prometheus")
    except ComposeTestError:
        down = [
            f"{t['labels'].get('job')}: {t['health']} {t.get('lastError', '')}"
            for t in _get_json(f"{base}/targets")["data"]["activeTargets"]
            if t["health"] != "up"
        ]
        raise ComposeTestError(f"Prometheus targets not up: {down}", "prometheus") from None
    groups = _get_json(f"{base}/rules")["data"]["groups"]
    rules = [r["name"] for g in groups for r in g["rules"]]
    if not rules:
        raise ComposeTestError("Prometheus loaded no alert rules", "prometheus")
    say(f"prometheus: {len(targets)} targets up, {len(rules)} rules loaded")
    return {"targets_up": len(targets), "rules": len(rules)}


def run(keep: bool) -> dict[str, Any]:
    t_start = time.monotonic()
    base = prepare()
    say(f"base image {base[:19]}")
    stack = Stack(f"fwct{uuid.uuid4().hex[:6]}")
    figures: dict[str, Any] = {"project": stack.project}
    try:
        t0 = time.monotonic()
        say("building images (first build several minutes; cached afterwards)")
        stack.compose("build")
        figures["build_s"] = round(time.monotonic() - t0, 1)
        size = int(_docker("image", "inspect", "-f", "{{.Size}}", "framewatch:cpu"))
        figures["image_mib"] = round(size / 2**20)
        say(f"built in {figures['build_s']} s; framewatch:cpu is {figures['image_mib']} MiB")
        t0 = time.monotonic()
        try:
            stack.compose("up", "-d")
        except ComposeTestError as exc:  # a dependency never got healthy: show whose logs
            state = stack.health()
            exc.service = next((s for s, v in state.items() if v != "healthy"), None)
            raise

        def healthy() -> bool:
            state = stack.health()
            bad = {s: v for s, v in state.items() if v not in ("healthy",)}
            failed = [s for s, v in bad.items() if v in ("exited", "dead", "unhealthy")]
            if failed:
                raise ServiceFailed(f"service {failed[0]} is {bad[failed[0]]}", failed[0])
            return not bad

        try:
            _until("every service healthy", healthy, 300)
        except ComposeTestError as exc:
            if exc.service is None:
                state = stack.health()
                exc.service = next((s for s, v in state.items() if v != "healthy"), None)
            raise
        figures["up_s"] = round(time.monotonic() - t0, 1)
        say(f"stack healthy in {figures['up_s']} s")
        figures |= scenario(stack)
        figures |= prometheus(stack)
    except ComposeTestError as exc:
        if exc.service:
            say(f"last log lines of {exc.service}:\n{stack.logs(exc.service)}")
        raise
    finally:
        if not keep:
            stack.compose("down", "-v", "--remove-orphans", check=False)
            left = _docker("ps", "-a", "-q", "--filter",
                           f"label=com.docker.compose.project={stack.project}")  # fmt: skip
            if left:
                raise ComposeTestError(f"containers left behind after down: {left.split()}")
            say("stack down, no container left")
    figures["total_s"] = round(time.monotonic() - t_start, 1)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.compose_test",
        description=__doc__.split("\n\n")[0] + " Needs root (it may apt-get install docker.io).",
    )
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    args = parser.parse_args(argv)
    try:
        figures = run(args.keep)
    except ComposeTestError as exc:
        print(f"compose-test: FAILED: {exc}", file=sys.stderr)
        print(json.dumps({"ok": False, "error": str(exc)[:2000]}))
        return 1
    print(json.dumps({"ok": True, **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
