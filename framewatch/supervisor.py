"""Run several framewatch services as supervised child processes with one combined log.

Why not a process manager: `framewatch up` must work on a bare laptop with only Python, and the
rules are few: prefix each child's output with its name, restart a crashed child with backoff
(and say so), forward SIGINT/SIGTERM so every child shuts down cleanly (SIGKILL after a grace
period), and give up with a non-zero exit if a child keeps crashing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

import tenacity

from framewatch.errors import FramewatchError

_COLOURS = ("36", "33", "35", "32", "34", "31", "96", "93")
SUPERVISOR_NAME = "up"


class SupervisorError(FramewatchError):
    """A child could not be started or kept running."""


class _Crashed(Exception):
    """A child exited without being asked to (its exit code)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Child:
    """One supervised process: a name for the log and the argv to run."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None


@dataclass
class Policy:
    """Restart and shutdown tunables (from the caller's settings)."""

    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0
    max_restarts: int = 5  # crashes within `restart_window_s` before giving up
    restart_window_s: float = 60.0
    grace_s: float = 10.0  # SIGTERM/SIGINT -> SIGKILL


@dataclass
class _State:
    proc: asyncio.subprocess.Process | None = None
    crashes: list[float] = field(default_factory=list)
    restarts: int = 0


class Supervisor:
    """Start children, keep them running, and stop all of them on a signal or a hopeless crash."""

    def __init__(
        self,
        children: Sequence[Child],
        policy: Policy | None = None,
        out: TextIO | None = None,
        colour: bool | None = None,
    ) -> None:
        names = [c.name for c in children]
        if len(set(names)) != len(names):
            raise SupervisorError(f"child names must be unique, got {names}")
        self.children = list(children)
        self.policy = policy or Policy()
        self.out = out or sys.stdout
        if colour is None:
            colour = self.out.isatty() and "NO_COLOR" not in os.environ
        self.colour = colour
        self.width = max([len(n) for n in names] + [len(SUPERVISOR_NAME)])
        self.states = {c.name: _State() for c in self.children}
        self.failed: str | None = None
        self._stopping = asyncio.Event()
        self._signal: int = signal.SIGTERM

    # -- log ---------------------------------------------------------------------------------

    def _prefix(self, name: str) -> str:
        label = f"{name:<{self.width}} |"
        if not self.colour:
            return label
        idx = next((i for i, c in enumerate(self.children) if c.name == name), None)
        code = "1" if idx is None else _COLOURS[idx % len(_COLOURS)]
        return f"\x1b[{code}m{label}\x1b[0m"

    def say(self, message: str, name: str = SUPERVISOR_NAME) -> None:
        """Write one line of the combined log."""
        self.out.write(f"{self._prefix(name)} {message}\n")
        self.out.flush()

    async def _pump(self, name: str, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line over the reader limit: show the part we have
                line = await stream.read(64 * 1024)
            if not line:
                return
            self.say(line.decode(errors="replace").rstrip("\r\n"), name)

    # -- lifecycle ---------------------------------------------------------------------------

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Ask every child to stop (idempotent); `run` returns once all have exited."""
        if not self._stopping.is_set():
            self._signal = signum
            self._stopping.set()

    async def _spawn(self, child: Child) -> asyncio.subprocess.Process:
        env = dict(os.environ if child.env is None else child.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        try:
            return await asyncio.create_subprocess_exec(
                *child.argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                env=env,
                # own process group: a terminal Ctrl-C reaches only us, and we forward it once
                start_new_session=True,
                limit=1024 * 1024,
            )
        except OSError as exc:
            raise SupervisorError(
                f"cannot start {child.name} ({' '.join(child.argv)}): {exc}; "
                "check that the command is installed"
            ) from None

    async def _run_once(self, child: Child) -> None:
        """One life of the child: returns when it ended on request, raises _Crashed otherwise."""
        if self._stopping.is_set():
            return
        st = self.states[child.name]
        proc = await self._spawn(child)
        st.proc = proc
        if self._stopping.is_set():  # stop arrived while it was starting
            _signal_group(proc, self._signal)
        self.say(f"started {child.name} (pid {proc.pid}): {' '.join(child.argv)}")
        assert proc.stdout is not None
        pump = asyncio.create_task(self._pump(child.name, proc.stdout))
        code = await proc.wait()
        await pump
        if self._stopping.is_set():
            self.say(f"{child.name} stopped ({_describe_exit(code)})")
            return
        now = time.monotonic()
        window = self.policy.restart_window_s
        st.crashes = [t for t in st.crashes if now - t <= window] + [now]
        raise _Crashed(code)

    async def _keep(self, child: Child) -> None:
        """Restart a crashing child with exponential backoff in its crashes of the last
        window (so one that ran healthily for a while starts afresh), up to max_restarts."""
        st, p = self.states[child.name], self.policy

        def backoff(_rs: tenacity.RetryCallState) -> float:
            return min(p.backoff_initial_s * 2 ** (len(st.crashes) - 1), p.backoff_max_s)

        def hopeless(_rs: tenacity.RetryCallState) -> bool:
            return self._stopping.is_set() or len(st.crashes) > p.max_restarts

        async def pause(seconds: float) -> None:  # a stop cuts the backoff short
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._stopping.wait()

        def restarting(rs: tenacity.RetryCallState) -> None:
            st.restarts += 1
            code = rs.outcome.exception().code if rs.outcome else 0  # type: ignore[union-attr]
            self.say(
                f"{child.name} {_describe_exit(code)}; restarting in "
                f"{rs.next_action.sleep if rs.next_action else 0:.1f}s (restart {st.restarts}, "
                f"{len(st.crashes)}/{p.max_restarts} crashes in {p.restart_window_s:.0f}s)"
            )

        try:
            async for attempt in tenacity.AsyncRetrying(
                retry=tenacity.retry_if_exception_type(_Crashed),
                wait=backoff,
                stop=hopeless,
                sleep=pause,
                before_sleep=restarting,
                reraise=True,
            ):
                with attempt:
                    await self._run_once(child)
        except SupervisorError as exc:
            self.say(f"error: {exc}")
            self.failed = child.name
            self.stop()
        except _Crashed as exc:
            if self._stopping.is_set():
                return
            self.say(
                f"error: {child.name} {_describe_exit(exc.code)} {len(st.crashes)} times in "
                f"{p.restart_window_s:.0f}s; giving up and stopping everything. Its last "
                "lines above say why."
            )
            self.failed = child.name
            self.stop()

    async def _shutdown(self) -> None:
        await self._stopping.wait()
        live = [
            (n, s.proc)
            for n, s in self.states.items()
            if s.proc is not None and s.proc.returncode is None
        ]
        if live:
            self.say(
                f"stopping {', '.join(n for n, _ in live)} "
                f"({signal.Signals(self._signal).name}, SIGKILL after {self.policy.grace_s:.0f}s)"
            )
        for _, proc in live:
            _signal_group(proc, self._signal)
        deadline = time.monotonic() + self.policy.grace_s
        for name, proc in live:
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await proc.wait()
            except TimeoutError:
                self.say(f"{name} did not stop within {self.policy.grace_s:.0f}s; killing it")
                _signal_group(proc, signal.SIGKILL)
                await proc.wait()

    async def run(self, install_signals: bool = True) -> int:
        """Supervise until stopped. 0 after a requested stop, 1 if a child kept crashing."""
        loop = asyncio.get_running_loop()
        sigs = (signal.SIGINT, signal.SIGTERM)
        if install_signals:
            for s in sigs:
                loop.add_signal_handler(s, self.stop, s)
        try:
            keepers = [asyncio.create_task(self._keep(c)) for c in self.children]
            await self._shutdown()
            await asyncio.gather(*keepers)
        finally:
            if install_signals:
                for s in sigs:
                    loop.remove_signal_handler(s)
        if self.failed:
            return 1
        self.say("all services stopped")
        return 0


def _signal_group(proc: asyncio.subprocess.Process, signum: int) -> None:
    """Signal the child's whole process group, so its own helpers stop with it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def run(children: Sequence[Child], policy: Policy | None = None) -> int:
    """Blocking entry point for commands."""
    return asyncio.run(Supervisor(children, policy).run())


__all__ = ["Child", "Policy", "Supervisor", "SupervisorError", "run"]
