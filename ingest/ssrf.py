"""Refuse pull URLs that would make the ingester fetch internal addresses (SSRF guard).

The address rules are the project's one guard, :mod:`framewatch.netguard` (re-exported here);
this module adds what is specific to pulls: the schemes FFmpeg may open.
"""

from __future__ import annotations

from urllib.parse import urlparse

from framewatch import netguard
from framewatch.netguard import METADATA_HOSTS, Resolver, is_internal
from ingest.errors import UrlRefusedError

__all__ = ["METADATA_HOSTS", "PULL_SCHEMES", "Resolver", "check_url", "is_internal"]
PULL_SCHEMES = frozenset({"rtmp", "rtmps", "rtsp", "rtsps", "srt", "http", "https"})


def check_url(
    url: str, *, allow_private: bool = False, resolve: Resolver = netguard.resolve
) -> list[str]:
    """Raise UrlRefusedError unless `url` is a pull URL to public addresses only; return them."""
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
        return []
    try:
        return netguard.check_host(
            host, resolve=resolve,
            hint="set FRAMEWATCH_INGEST__ALLOW_PRIVATE_URLS=true only if pulling from your own "
            "network is intended",
        )  # fmt: skip
    except netguard.AddressRefused as exc:
        raise UrlRefusedError(f"{url!r}: {exc}") from None
