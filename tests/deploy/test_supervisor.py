"""The supervisor with real child processes: combined log, restart on crash, clean Ctrl-C."""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from framewatch.supervisor import Child, Policy, Supervisor, SupervisorError

PY = sys.executable
FAST = Policy(backoff_initial_s=0.05, backoff_max_s=0.2, max_restarts=2, grace_s=2.0)


def py(code: str) -> list[str]:
    return [PY, "-c", textwrap.dedent(code)]


async def run_for(sup: Supervisor, seconds: float) -> int:
    task = asyncio.create_task(sup.run(install_signals=False))
    await asyncio.sleep(seconds)
    sup.stop(signal.SIGTERM)
    return await asyncio.wait_for(task, 10)


async def test_combined_log_prefixes_each_line_with_the_service_name() -> None:
    out = io.StringIO()
    sup = Supervisor(
        [
            Child("alpha", py("print('one'); print('two'); import time; time.sleep(30)")),
            Child(
                "beta", py("import sys; sys.stderr.write('oops\\n'); import time; time.sleep(30)")
            ),
        ],
        FAST,
        out=out,
    )
    rc = await run_for(sup, 1.5)
    lines = out.getvalue().splitlines()
    assert rc == 0
    assert "alpha | one" in lines and "alpha | two" in lines
    assert "beta  | oops" in lines  # stderr is in the same log, names aligned
    assert "\x1b[" not in out.getvalue()  # not a TTY: no colour codes
    assert lines[-1].endswith("all services stopped")


async def test_crashed_child_is_restarted_and_the_log_says_so(tmp_path) -> None:
    marker = tmp_path / "runs"
    # crashes on its first run, stays up on the second
    code = f"""
        import pathlib, sys, time
        p = pathlib.Path({str(marker)!r})
        n = int(p.read_text()) if p.exists() else 0
        p.write_text(str(n + 1))
        print('run', n + 1)
        if n == 0:
            sys.exit(3)
        time.sleep(30)
    """
    out = io.StringIO()
    sup = Supervisor([Child("flaky", py(code))], FAST, out=out)
    rc = await run_for(sup, 2.0)
    log = out.getvalue()
    assert rc == 0
    assert marker.read_text() == "2"
    assert "flaky exited with code 3; restarting in 0.1s (restart 1" in log
    assert "flaky | run 2" in log


async def test_child_that_keeps_crashing_makes_the_supervisor_fail_and_stop_the_others() -> None:
    out = io.StringIO()
    sup = Supervisor(
        [
            Child("broken", py("import sys; print('bad config'); sys.exit(2)")),
            Child("fine", py("import time; time.sleep(30)")),
        ],
        FAST,
        out=out,
    )
    rc = await asyncio.wait_for(sup.run(install_signals=False), 15)
    log = out.getvalue()
    assert rc == 1
    assert sup.failed == "broken"
    assert "giving up and stopping everything" in log
    assert log.count("broken | bad config") == FAST.max_restarts + 1
    assert "fine stopped" in log
    proc = sup.states["fine"].proc
    assert proc is not None and proc.returncode is not None


async def test_child_ignoring_sigterm_is_killed_after_the_grace_period() -> None:
    out = io.StringIO()
    stubborn = py(
        """
        import signal, time
        signal.signal(signal.SIGTERM, lambda *a: print('ignoring TERM', flush=True))
        print('ready', flush=True)
        while True:
            time.sleep(0.1)
        """
    )
    sup = Supervisor(
        [Child("stubborn", stubborn)],
        Policy(grace_s=0.5),
        out=out,
    )
    t0 = time.monotonic()
    rc = await run_for(sup, 1.0)
    log = out.getvalue()
    assert rc == 0
    assert "stubborn | ignoring TERM" in log
    assert "did not stop within" in log and "killed by SIGKILL" in log
    assert time.monotonic() - t0 < 5


async def test_missing_executable_is_a_clear_error() -> None:
    out = io.StringIO()
    sup = Supervisor([Child("ghost", ["/nonexistent/framewatch-nope"])], FAST, out=out)
    rc = await asyncio.wait_for(sup.run(install_signals=False), 10)
    assert rc == 1
    assert "cannot start ghost" in out.getvalue()


def test_duplicate_names_are_rejected() -> None:
    with pytest.raises(SupervisorError, match="unique"):
        Supervisor([Child("a", ["true"]), Child("a", ["true"])])


def test_ctrl_c_forwards_sigint_and_every_child_exits_cleanly(tmp_path) -> None:
    """A real SIGINT to the supervisor process: children get SIGINT once and say goodbye."""
    child = """
        import signal, sys, time
        def bye(signum, _frame):
            print('bye on', signal.Signals(signum).name, flush=True)
            sys.exit(0)
        signal.signal(signal.SIGINT, bye)
        print('ready', flush=True)
        while True:
            time.sleep(0.1)
    """
    script = textwrap.dedent(
        f"""
        import sys
        from framewatch.supervisor import Child, Policy, run
        child = {textwrap.dedent(child)!r}
        sys.exit(run([Child('a', [sys.executable, '-c', child]),
                      Child('b', [sys.executable, '-c', child])], Policy(grace_s=5)))
        """
    )
    proc = subprocess.Popen(
        [PY, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 15
    while sum("| ready" in line for line in seen) < 2 and time.monotonic() < deadline:
        seen.append(proc.stdout.readline())
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=15)
    log = "".join(seen) + rest
    assert proc.returncode == 0, log
    assert "a  | bye on SIGINT" in log and "b  | bye on SIGINT" in log
    assert log.count("| bye on") == 2  # forwarded once, not also by the terminal
    assert "all services stopped" in log
    pids = [int(m) for m in re.findall(r"\(pid (\d+)\)", log)]
    assert len(pids) == 2
    for pid in pids:  # no child left behind
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
