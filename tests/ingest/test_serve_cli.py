"""The real commands: `framewatch apikeys add`, `framewatch sources ...`, `framewatch ingest serve`."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import aiohttp
import numpy as np
import pytest
from PIL import Image

from framewatch.local import free_port
from framewatch.settings import Settings
from tests.ingest.helpers import consume, video

pytestmark = pytest.mark.timeout(90)


def env_of(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "FRAMEWATCH_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "FRAMEWATCH_REDIS_URL": settings.redis_url.get_secret_value(),
        "FRAMEWATCH_REDIS_PREFIX": settings.redis_prefix,
        "FRAMEWATCH_TOPICS__PREFIX": settings.topics.prefix,
        "FRAMEWATCH_METRICS__ENABLED": "false",
        **extra,
    }


def fw(settings: Settings, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "framewatch.cli", *args],
        capture_output=True, text=True, env=env_of(settings, **extra), timeout=60,
    )  # fmt: skip


async def test_serve_push_and_registered_pull(settings: Settings, kafka_topics: object) -> None:
    added = fw(settings, "apikeys", "add", "--tenant", "acme", "--json")
    assert added.returncode == 0, added.stderr
    key = json.loads(added.stdout)["api_key"]
    reg = fw(settings, "sources", "add", video("doorknob-hd-no-bar.mp4"),
             "--stream-id", "pulled", "--account-id", "acct")  # fmt: skip
    assert reg.returncode == 0, reg.stderr
    listed = fw(settings, "sources", "list", "--json")
    assert [e["stream_id"] for e in json.loads(listed.stdout)] == ["pulled"]
    refused = fw(settings, "sources", "add", "rtmp://127.0.0.1/live/x",
                 "--stream-id", "x", "--account-id", "a")  # fmt: skip
    assert refused.returncode == 1 and "internal address" in refused.stderr

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "framewatch.cli", "ingest", "serve"],
        env=env_of(settings, FRAMEWATCH_INGEST__HTTP_PORT=str(port),
                   FRAMEWATCH_INGEST__SUPERVISOR_POLL_S="0.2"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        buf = io.BytesIO()
        Image.fromarray(np.full((240, 320, 3), 120, np.uint8)).save(buf, "PNG")
        async with aiohttp.ClientSession() as s:
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with s.get(f"http://127.0.0.1:{port}/openapi.json") as r:
                        assert r.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    assert time.monotonic() < deadline, "serve did not come up"
                    await asyncio.sleep(0.2)
            async with s.post(
                f"http://127.0.0.1:{port}/v1/streams/pushed/frames?account_id=acct",
                data=buf.getvalue(), headers={"Authorization": f"Bearer {key}"},
            ) as r:  # fmt: skip
                assert r.status == 202, await r.text()

        def both(fs: list[Any]) -> bool:
            return {f.stream_id for f in fs} >= {"pushed", "pulled"}

        frames = await consume(settings, "frames", 10**6, timeout=30, done=both)
        by = {f.stream_id for f in frames}
        assert by == {"pushed", "pulled"}
        assert next(f for f in frames if f.stream_id == "pushed").tenant == "acme"
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert fw(settings, "apikeys", "revoke", key).returncode == 0


def test_a_second_sigterm_ends_an_ingest_stuck_waiting(settings: Settings) -> None:
    """Kafka is unreachable, so the stream waits for it (ingest.broker_wait_s, 60 s) and the
    first SIGTERM's clean stop is not reached; a second SIGTERM ends the process at once."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "framewatch.cli", "ingest", video("doorknob-hd-no-bar.mp4"),
         "--stream-id", "stuck", "--account-id", "acct", "--realtime"],
        env=env_of(settings, FRAMEWATCH_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(4)  # started, waiting for the broker
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
    finally:
        proc.kill()
    assert code == 130
    assert "cancelled by a second signal" in proc.stderr.read()  # type: ignore[union-attr]


async def test_start_at_holds_a_realtime_stream_until_then(
    settings: Settings, kafka_topics: object
) -> None:
    """Many simulated live streams start together once their processes are up."""
    start_at = time.time() + 4.0
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "framewatch.cli", "ingest", video("doorknob-hd-no-bar.mp4"),
        "--stream-id", "later", "--account-id", "acct", "--realtime", "--start-at",
        f"{start_at:.3f}", env=env_of(settings),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    frames = await consume(settings, "frames", 1)
    assert frames and min(f.captured_at for f in frames) >= start_at - 0.05  # type: ignore[attr-defined]


def test_a_stream_waiting_for_its_start_has_already_reached_kafka(settings: Settings) -> None:
    """--start-at waits once Kafka and Redis are reached: a stream set to start in two
    minutes whose Kafka is unreachable says so now (after ingest.broker_wait_s), not then."""
    proc = subprocess.run(
        [sys.executable, "-m", "framewatch.cli", "ingest", video("doorknob-hd-no-bar.mp4"),
         "--stream-id", "later", "--account-id", "acct", "--realtime",
         "--start-at", f"{time.time() + 120:.3f}"],
        env=env_of(settings, FRAMEWATCH_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}",
                   FRAMEWATCH_INGEST__BROKER_WAIT_S="1"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "unreachable" in proc.stderr and "FRAMEWATCH_KAFKA_BOOTSTRAP" in proc.stderr


async def test_a_stream_whose_clean_up_sticks_still_ends_its_process(
    settings: Settings, kafka_topics: object
) -> None:
    """The stream's frames are all sent, then its clean-up sticks (here Redis never answers
    the close): the process still ends within ingest.stop_grace_s, 0 as the stream ended,
    with every thread's stack saying where it stuck, instead of holding its supervisor."""
    code = (
        "import asyncio, sys, redis.asyncio as r\n"
        "async def never_closes(self, *a, **k):\n    await asyncio.sleep(3600)\n"
        "r.Redis.aclose = never_closes\n"
        "from framewatch.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, "ingest", video("doorknob-hd-no-bar.mp4"),
        "--stream-id", "sticky", "--account-id", "acct",
        env=env_of(settings, FRAMEWATCH_INGEST__STOP_GRACE_S="2"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert "ingest.stop_grace_s" in err.decode() and "never_closes" in err.decode()
    assert time.monotonic() - t0 < 40
    assert await consume(settings, "frames", 1)  # its frames went out before the clean-up


def test_a_stuck_clean_up_cannot_hold_the_process() -> None:
    """Past its grace the watchdog prints every thread's stack (where it was stuck) and ends
    the process with the code it was given, whatever the process waits on."""
    code = (
        "import time; from ingest.cli import exit_within\n"
        "exit_within(0.5, lambda: 0)\n"
        "def stuck_in_clean_up():\n    time.sleep(60)\n"
        "stuck_in_clean_up()\n"
    )
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and time.monotonic() - t0 < 20
    assert "ingest.stop_grace_s" in done.stderr and "stuck_in_clean_up" in done.stderr
