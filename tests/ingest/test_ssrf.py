"""Unit tests of the pull-URL guard (a fake resolver: no DNS in unit tests)."""

from __future__ import annotations

import pytest

from ingest.errors import UrlRefusedError
from ingest.ssrf import check_url


def resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    return lambda host: table[host]


@pytest.mark.parametrize(
    "url",
    [
        "rtmp://127.0.0.1/live/x",
        "http://10.0.0.5/a.m3u8",
        "rtsp://192.168.1.2/cam",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/x.m3u8",
        "http://[::ffff:127.0.0.1]/x.m3u8",
        "srt://0.0.0.0:9000",
        "http://metadata.google.internal/",
    ],
)
def test_internal_addresses_refused(url: str) -> None:
    with pytest.raises(UrlRefusedError, match=r"refused|metadata"):
        check_url(url, resolve=resolver({}))


def test_every_resolved_address_is_checked() -> None:
    r = resolver({"cdn.example": ["93.184.216.34", "10.1.2.3"], "ok.example": ["93.184.216.34"]})
    with pytest.raises(UrlRefusedError, match=r"10\.1\.2\.3"):
        check_url("https://cdn.example/live.m3u8", resolve=r)
    check_url("https://ok.example/live.m3u8", resolve=r)


def test_allow_setting_permits_private_addresses() -> None:
    check_url("rtmp://127.0.0.1:1935/live/x", allow_private=True)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://x/", "/tmp/a.mp4", "http:///x"])
def test_non_pull_urls_refused(url: str) -> None:
    with pytest.raises(UrlRefusedError):
        check_url(url, resolve=resolver({}))
