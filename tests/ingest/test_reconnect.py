"""A live pull that cannot connect: backoff, give-up and stop, as an operator sees them
(the log, framewatch_ingest_reconnects_total, the error and its dead letter)."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from framewatch import kafkaio
from framewatch.local import free_port
from framewatch.settings import Settings
from ingest.engine import StreamMeta
from ingest.errors import SourceError
from ingest.metrics import RECONNECTS
from ingest.runner import StreamIngester
from ingest.state import SourceState
from tests.ingest.helpers import consume

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def test_a_refused_pull_backs_off_exponentially_then_gives_up(make_settings, caplog) -> None:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings(
        ingest={
            "allow_private_urls": True,
            "open_timeout_s": 60,  # the give-up count ends it, not the open timeout
            "reconnect_initial_s": 0.2,
            "reconnect_max_s": 0.5,
            "reconnect_max_attempts": 3,
        }
    )
    await kafkaio.create_topics(settings)
    caplog.set_level(logging.WARNING, logger="ingest.runner")
    before = RECONNECTS._value.get()
    url = f"rtmp://127.0.0.1:{free_port()}/live/k"  # nothing listens: every connect fails
    ing = StreamIngester(settings, url, StreamMeta("refused", "a"))
    with pytest.raises(SourceError):
        await asyncio.wait_for(ing.run(), 60)
    waits = [float(w) for w in re.findall(r"reconnecting in ([0-9.]+)s", caplog.text)]
    assert waits == [0.2, 0.4, 0.5]  # doubling from reconnect_initial_s, capped at the max
    assert RECONNECTS._value.get() - before == 3  # the 4th failure is the last: no 4th retry
    assert ing.status.state is SourceState.FAILED
    dead = await consume(settings, "dead_letters", 1, timeout=10)
    assert dead and dead[0].key == "default/refused"


async def test_stop_cuts_a_reconnect_wait_short_and_ends_quietly(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings(
        ingest={"allow_private_urls": True, "open_timeout_s": 60, "reconnect_initial_s": 600}
    )
    await kafkaio.create_topics(settings)
    url = f"rtmp://127.0.0.1:{free_port()}/live/k"
    ing = StreamIngester(settings, url, StreamMeta("stopped", "a"))
    task = asyncio.create_task(ing.run())
    while ing.status.state is not SourceState.RECONNECTING:  # the first connect failed
        assert not task.done(), task
        await asyncio.sleep(0.05)
    ing.stop()  # a 600 s wait: only stop() ends it within the test's timeout
    summary = await task  # no error: stopping is not a failure
    assert summary.reconnects == 0 and ing.status.state is not SourceState.FAILED
