"""Refuse pull URLs that would make the ingester fetch internal addresses (SSRF guard).

Every address the host name resolves to is checked, so a name with one public and one private
address is refused too. Loopback, private, link-local (cloud metadata 169.254.169.254 included),
multicast, reserved and unspecified addresses are refused unless ``allow_private`` is set.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlparse

from ingest.errors import UrlRefusedError

PULL_SCHEMES = frozenset({"rtmp", "rtmps", "rtsp", "rtsps", "srt", "http", "https"})
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})

Resolver = Callable[[str], list[str]]


def _resolve(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise UrlRefusedError(f"cannot resolve {host!r}: {exc}; check the URL") from None
    return sorted({str(info[4][0]) for info in infos})


def is_internal(address: str) -> bool:
    """True for addresses an outside-facing fetcher must not reach."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def check_url(url: str, *, allow_private: bool = False, resolve: Resolver = _resolve) -> None:
    """Raise UrlRefusedError unless `url` is a pull URL to public addresses only."""
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme not in PULL_SCHEMES:
        raise UrlRefusedError(
            f"{url!r}: scheme {scheme or '(none)'!r} is not a pull protocol; use one of "
            + ", ".join(sorted(PULL_SCHEMES))
        )
    host = parsed.hostname
    if not host:
        raise UrlRefusedError(f"{url!r}: has no host name")
    if allow_private:
        return
    if host.lower().rstrip(".") in METADATA_HOSTS:
        raise UrlRefusedError(f"{url!r}: {host} is a cloud metadata service")
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = resolve(host)
    if not addresses:
        raise UrlRefusedError(f"{url!r}: {host} resolves to no address")
    bad = [a for a in addresses if is_internal(a)]
    if bad:
        raise UrlRefusedError(
            f"{url!r}: {host} resolves to internal address(es) {', '.join(bad)}; refused. Set "
            "FRAMEWATCH_INGEST__ALLOW_PRIVATE_URLS=true only if pulling from your own network "
            "is intended"
        )
