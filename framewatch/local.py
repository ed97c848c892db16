"""A real single-node Kafka (KRaft) and Redis on 127.0.0.1, for local runs and tests.

The broker's jars come from Maven Central through `mvn` (framewatch/data/local/pom.xml) into a cache
folder once; each start formats a throwaway data dir. Processes run in their own session so a
Ctrl-C in the terminal does not take them down, and `stop` ends the whole process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from framewatch.errors import LocalStackError
from framewatch.settings import Settings

DEPLOY_DIR = Path(__file__).resolve().parent / "data" / "local"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still "exists"; treat it as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def ensure_jars(cache_dir: Path, version: str) -> Path:
    """Fetch the broker jars with mvn into cache_dir/kafka-VERSION (once); return that folder."""
    jars = cache_dir / f"kafka-{version}"
    marker = jars / ".complete"
    if marker.exists():
        return jars
    mvn = shutil.which("mvn")
    if not mvn:
        raise LocalStackError(
            "mvn is not installed: it fetches the Kafka jars from Maven Central "
            "(apt-get install -y maven), or point FRAMEWATCH_KAFKA_BOOTSTRAP at a running broker"
        )
    jars.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn, "-q", "-B", "-f", str(DEPLOY_DIR / "pom.xml"),
        f"-Dkafka.version={version}", "dependency:copy-dependencies",
        f"-DoutputDirectory={jars}", "-DincludeScope=runtime",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not any(jars.glob("kafka_2.13-*.jar")):
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
        raise LocalStackError(f"mvn could not fetch Kafka {version} jars:\n{tail}")
    marker.write_text(version)
    return jars


@dataclass
class ProcInfo:
    pid: int
    port: int
    data_dir: str
    log: str


def _stop_pid(pid: int, timeout: float = 30.0) -> None:
    if not pid_alive(pid):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _kill_pid(pid: int | None) -> None:
    if pid and pid_alive(pid):
        os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _wait_port(port: int, pid: int, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if not pid_alive(pid):
            break
        time.sleep(0.1)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.exists() else ""
    _stop_pid(pid, 5)
    raise LocalStackError(f"{what} did not accept connections on 127.0.0.1:{port}:\n{tail}")


class _LocalServer:
    """A server process of the local stack: launched into its own session with its log, then
    waited for on its port; ``dir`` is its state (removed by ``stop(keep_data=False)``)."""

    name = "server"
    dir: Path
    log: Path
    port: int
    pid: int | None = None

    def _launch(self, args: list[str], timeout: float) -> None:
        with open(self.log, "ab") as out:
            proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        self.pid = proc.pid
        _wait_port(self.port, proc.pid, timeout, self.name, self.log)

    def stop(self, keep_data: bool = True) -> None:
        """Stop cleanly, or, when its data is thrown away anyway, at once: a broker that has
        served a test session's thousands of partitions took 26 s to shut down cleanly."""
        if self.pid:
            (_stop_pid if keep_data else _kill_pid)(self.pid)
            self.pid = None
        if not keep_data:
            shutil.rmtree(self.dir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL, for fault tests."""
        _kill_pid(self.pid)
        self.pid = None

    def info(self) -> ProcInfo:
        return ProcInfo(self.pid or 0, self.port, str(self.dir), str(self.log))


class KafkaBroker(_LocalServer):
    """One KRaft broker+controller bound to 127.0.0.1."""

    name = "Kafka"

    def __init__(
        self,
        jars: Path,
        state_dir: Path,
        port: int,
        controller_port: int,
        heap: str,
        proxy_listener: tuple[int, int] | None = None,
    ):
        self.jars, self.dir, self.port, self.cport, self.heap = (
            jars, state_dir, port, controller_port, heap,
        )  # fmt: skip
        # (listen port, advertised port): a second listener that tells clients to come back
        # through a proxy on the advertised port (fault tests cut the network there)
        self.proxy_listener = proxy_listener
        self.data_dir = state_dir / "data"
        self.log = state_dir / "broker.log"
        self.pid: int | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self) -> list[str]:
        java = shutil.which("java")
        if not java:
            raise LocalStackError("java is not installed (Kafka needs Java 17+)")
        return [
            java, f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC",
            "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{DEPLOY_DIR / 'log4j.properties'}",
            "-cp", f"{self.jars}/*",
        ]  # fmt: skip

    def start(self, timeout: float = 90.0) -> None:
        """Start the broker; formats storage the first time (the data dir is kept for restarts)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        props = self.dir / "server.properties"
        props.write_text(
            (DEPLOY_DIR / "server.properties")
            .read_text()
            .format(port=self.port, controller_port=self.cport, data_dir=self.data_dir)
        )
        if self.proxy_listener:
            props.write_text(_with_proxy_listener(props.read_text(), *self.proxy_listener))
        if not (self.data_dir / "meta.properties").exists():
            cluster_id = _kafka_cluster_id()
            fmt = subprocess.run(
                [*self._java(), "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c",
                 str(props), "--ignore-formatted"],
                capture_output=True, text=True,
            )  # fmt: skip
            if fmt.returncode != 0:
                raise LocalStackError(f"formatting Kafka storage failed:\n{fmt.stderr[-2000:]}")
        self._launch([*self._java(), "kafka.Kafka", str(props)], timeout)


def _with_proxy_listener(props: str, listen_port: int, advertised_port: int) -> str:
    """Add listener PROXIED on listen_port, advertised as 127.0.0.1:advertised_port."""
    out = []
    for line in props.splitlines():
        if line.startswith("listeners="):
            line += f",PROXIED://127.0.0.1:{listen_port}"
        elif line.startswith("advertised.listeners="):
            line += f",PROXIED://127.0.0.1:{advertised_port}"
        elif line.startswith("listener.security.protocol.map="):
            line += ",PROXIED:PLAINTEXT"
        out.append(line)
    return "\n".join(out) + "\n"


def _kafka_cluster_id() -> str:
    import base64

    while True:  # an id starting with "-" would be read as an option by the storage tool
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class RedisServer(_LocalServer):
    """redis-server bound to 127.0.0.1 with an append-only file in its own dir."""

    name = "Redis"

    def __init__(self, state_dir: Path, port: int, password: str | None = None):
        self.dir, self.port, self.password = state_dir, port, password
        self.log = state_dir / "redis.log"
        self.pid: int | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> None:
        exe = shutil.which("redis-server")
        if not exe:
            raise LocalStackError(
                "redis-server is not installed: apt-get install -y redis-server, "
                "or point FRAMEWATCH_REDIS_URL at a running Redis"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        args = [exe, str(DEPLOY_DIR / "redis.conf"), "--port", str(self.port), "--dir",
                str(self.dir), "--daemonize", "no"]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        self._launch(args, timeout)


# ------------------------------------------------------------------------------------------
# `framewatch local start|stop|status`: the same two servers, remembered in a state file


class LocalStack:
    def __init__(self, settings: Settings) -> None:
        self.s = settings.local
        self.state_dir = self.s.state_dir.resolve()
        self.state_file = self.state_dir / "state.json"

    def _load(self) -> dict[str, dict[str, object]]:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _save(self, state: dict[str, dict[str, object]]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(state, indent=2))

    def status(self) -> dict[str, dict[str, object]]:
        out: dict[str, dict[str, object]] = {}
        state = self._load()
        for name, port in (("kafka", self.s.kafka_port), ("redis", self.s.redis_port)):
            info = state.get(name, {})
            pid = int(info.get("pid", 0) or 0)  # type: ignore[call-overload]
            up = pid_alive(pid) and port_open(int(info.get("port", port)))  # type: ignore[call-overload]
            out[name] = {
                "up": up,
                "pid": pid if up else None,
                "address": f"127.0.0.1:{info.get('port', port)}",
                "log": info.get("log"),
            }
        out["kafka"]["bootstrap"] = out["kafka"]["address"]
        out["redis"]["url"] = f"redis://{out['redis']['address']}/0"
        return out

    def start(self, progress=print, free_if_taken: bool = False) -> dict[str, dict[str, object]]:  # type: ignore[no-untyped-def]
        """Start what is not running (idempotent) and wait until both accept connections.

        A configured port that another process holds is refused (users point other tools at
        these ports), unless ``free_if_taken``: a throwaway stack (the demo) then takes a free
        port and says which.
        """
        state = self._load()
        current = self.status()

        def port(want: int, setting: str) -> int:
            if not port_open(want):
                return want
            if not free_if_taken:
                raise LocalStackError(
                    f"port {want} is taken by another process; set FRAMEWATCH_LOCAL__{setting} "
                    "or stop it"
                )
            got = free_port()
            progress(f"port {want} is taken by another process; using {got} instead")
            return got

        if not current["redis"]["up"]:
            redis_port = port(self.s.redis_port, "REDIS_PORT")
            progress(f"starting redis on 127.0.0.1:{redis_port}")
            r = RedisServer(self.state_dir / "redis", redis_port)
            r.start()
            state["redis"] = asdict(r.info())
            self._save(state)
        if not current["kafka"]["up"]:
            kafka_port = port(self.s.kafka_port, "KAFKA_PORT")
            controller_port = port(self.s.controller_port, "CONTROLLER_PORT")
            progress(f"fetching Kafka {self.s.kafka_version} jars (cached after the first time)")
            jars = ensure_jars(self.s.cache_dir, self.s.kafka_version)
            kdir = self.state_dir / "kafka"
            shutil.rmtree(kdir, ignore_errors=True)  # throwaway data each start
            progress(f"starting kafka {self.s.kafka_version} (KRaft) on 127.0.0.1:{kafka_port}")
            t0 = time.monotonic()
            k = KafkaBroker(jars, kdir, kafka_port, controller_port, self.s.kafka_heap)
            k.start(self.s.start_timeout_s)
            progress(f"kafka accepted connections after {time.monotonic() - t0:.1f}s")
            state["kafka"] = asdict(k.info())
            self._save(state)
        return self.status()

    def stop(self) -> None:
        state = self._load()
        for name in ("kafka", "redis"):
            pid = int(state.get(name, {}).get("pid", 0) or 0)  # type: ignore[call-overload]
            if pid:
                _stop_pid(pid)
        shutil.rmtree(self.state_dir / "kafka", ignore_errors=True)
        shutil.rmtree(self.state_dir / "redis", ignore_errors=True)
        self.state_file.unlink(missing_ok=True)
