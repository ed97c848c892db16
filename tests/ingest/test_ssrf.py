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
    with pytest.raises(UrlRefusedError, match="address not allowed") as exc:
        check_url("https://cdn.example/live.m3u8", resolve=r)
    assert "10.1.2.3" not in str(exc.value)  # the refusal is no DNS oracle
    check_url("https://ok.example/live.m3u8", resolve=r)


def test_allow_setting_permits_private_addresses() -> None:
    check_url("rtmp://127.0.0.1:1935/live/x", allow_private=True)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://x/", "/tmp/a.mp4", "http:///x"])
def test_non_pull_urls_refused(url: str) -> None:
    with pytest.raises(UrlRefusedError):
        check_url(url, resolve=resolver({}))


@pytest.mark.parametrize(
    "address",
    ["100.64.0.1", "100.100.100.200", "192.88.99.1", "2002:7f00:1::1", "2002:a9fe:a9fe::"],
)
def test_cgnat_and_6to4_relays_refused(address: str) -> None:
    """Carrier-grade NAT (a cloud metadata address lives there) and 6to4 reach internal IPv4."""
    with pytest.raises(UrlRefusedError, match="address not allowed"):
        check_url("https://relay.example/x", resolve=resolver({"relay.example": [address]}))
