"""Credentials of pull URLs (userinfo, RTMP stream keys, query tokens) never reach logs, dead
letters or `sources list`."""

from __future__ import annotations

import argparse
import json
import logging

import pytest

from framewatch import kafkaio, records, redisio
from framewatch.local import free_port
from framewatch.redact import mask_url
from framewatch.settings import Settings
from ingest import cli, registry
from ingest.engine import StreamMeta
from ingest.errors import SourceError
from ingest.runner import StreamIngester
from tests.ingest.helpers import consume

pytestmark = pytest.mark.timeout(90)
SECRETS = ("PASS", "STREAMKEY", "TOKEN")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtmp://user:PASS@media.example/live/STREAMKEY", "rtmp://***@media.example/live/***"),
        (
            "rtmps://media.example:443/app/STREAMKEY?x=TOKEN",
            "rtmps://media.example:443/app/***?x=***",
        ),
        (
            "https://cdn.example/a/live.m3u8?token=TOKEN",
            "https://cdn.example/a/live.m3u8?token=***",
        ),
        ("rtsp://admin:PASS@[2001:db8::1]:554/cam", "rtsp://***@[2001:db8::1]:554/cam"),
        ("/videos/a.mp4", "/videos/a.mp4"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


async def test_start_reconnect_and_dead_letter_never_show_credentials(
    make_settings, caplog
) -> None:  # type: ignore[no-untyped-def]
    port = free_port()  # nothing listens: every connection fails
    settings: Settings = make_settings(
        ingest={
            "allow_private_urls": True,
            "open_timeout_s": 2,
            "read_timeout_s": 2,
            "reconnect_initial_s": 0.1,
            "reconnect_max_attempts": 2,
        }
    )
    await kafkaio.create_topics(settings)
    url = f"rtmp://user:PASS@127.0.0.1:{port}/live/STREAMKEY?t=TOKEN"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SourceError) as info:
        await StreamIngester(settings, url, StreamMeta("masked", "a")).run()
    dead = await consume(settings, "dead_letters", 1)
    assert dead and isinstance(dead[0], records.DeadLetter)
    shown = caplog.text + str(info.value) + dead[0].model_dump_json()
    assert "reconnecting" in caplog.text and "rtmp://***@127.0.0.1" in shown
    assert not [s for s in SECRETS if s in shown]


def test_sources_list_masks_urls(make_settings, capsys) -> None:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings(ingest={"allow_private_urls": True})
    client = redisio.sync_client(settings)
    url = "rtmp://user:PASS@127.0.0.1/live/STREAMKEY"
    registry.add(settings, client, registry.SourceEntry(url, "list-me", "a"))
    for as_json in (True, False):
        cli._sources(argparse.Namespace(sources_cmd="list", json=as_json), settings)
        out = capsys.readouterr().out
        assert "list-me" in out and not [s for s in SECRETS if s in out]
    rows = json.loads(
        (
            cli._sources(argparse.Namespace(sources_cmd="list", json=True), settings),
            capsys.readouterr().out,
        )[1]
    )
    assert rows[0]["source"] == "rtmp://***@127.0.0.1/live/***" and rows[0]["state"] == "unknown"
