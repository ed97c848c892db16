"""Unit tests of the one network guard (a fake resolver: no DNS in unit tests)."""

from __future__ import annotations

import pytest

from framewatch.netguard import UrlRefusedError, check_url, is_internal, resolve_checked
from ingest.egress import PULL_SCHEMES


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
        "http://100.100.100.200/latest/meta-data",  # Alibaba Cloud metadata (CGNAT range)
        "http://192.88.99.1/",  # 6to4 relay anycast
        "http://[2002:a00:1::1]/",  # 6to4 of 10.0.0.1
        "http://[2002:7f00:1::1]/",  # 6to4 of 127.0.0.1
        "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
        "http://[::127.0.0.1]/",  # IPv4-compatible loopback
        "http://[fe80::1%25eth0]/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://[ff02::1]/",
        "http://[::]/",
        "http://[fc00::1]/",
    ],
)
def test_internal_addresses_refused(url: str) -> None:
    with pytest.raises(UrlRefusedError, match=r"refused|metadata"):
        check_url(url, PULL_SCHEMES, resolver=resolver({}))


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2001:4860:4860::8888", "64:ff9b::808:808"]
)
def test_public_addresses_pass(address: str) -> None:
    assert not is_internal(address)


def test_every_resolved_address_is_checked() -> None:
    r = resolver({"cdn.example": ["93.184.216.34", "10.1.2.3"], "ok.example": ["93.184.216.34"]})
    with pytest.raises(UrlRefusedError, match="internal"):
        check_url("https://cdn.example/live.m3u8", PULL_SCHEMES, resolver=r)
    assert check_url("https://ok.example/live.m3u8", PULL_SCHEMES, resolver=r) == ["93.184.216.34"]


def test_the_refusal_does_not_say_what_the_name_resolved_to() -> None:
    """No DNS oracle: the message names the host, never the internal address it found."""
    with pytest.raises(UrlRefusedError) as info:
        resolve_checked("vm.example", resolver=resolver({"vm.example": ["10.9.8.7"]}))
    assert "10.9.8.7" not in str(info.value) and "vm.example" in str(info.value)


def test_allow_setting_permits_private_addresses() -> None:
    check_url("rtmp://127.0.0.1:1935/live/x", PULL_SCHEMES, allow_private=True)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://x/", "/tmp/a.mp4", "http:///x"])
def test_non_pull_urls_refused(url: str) -> None:
    with pytest.raises(UrlRefusedError):
        check_url(url, PULL_SCHEMES, resolver=resolver({}))
