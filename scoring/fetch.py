"""Image URLs of check requests -> bytes, through the project's network guard.

``data:`` URLs are decoded in place. http(s) hosts are resolved and checked once by
:mod:`framewatch.netguard` (the project's one guard), and the connection goes to exactly the checked addresses (a resolver
that only answers those), so a DNS-rebinding host cannot swap in an internal address between
the check and the connection. Redirects are not followed. A refusal never says what a host
resolves to.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import socket
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver

from framewatch import netguard
from framewatch.settings import Settings
from scoring.errors import ScoringError

log = logging.getLogger(__name__)
FETCH_TIMEOUT_S = 10.0


class UrlRefused(ScoringError):
    """An image URL we will not fetch (scheme, address, size, or the fetch failed)."""


class _Pinned(AbstractResolver):
    """Answers every lookup with the addresses the guard already checked."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[dict[str, Any]]:
        return [{"hostname": host, "host": a, "port": port, "proto": 0,
                 "family": socket.AF_INET6 if ":" in a else socket.AF_INET,
                 "flags": socket.AI_NUMERICHOST} for a in self.addresses]  # fmt: skip

    async def close(self) -> None:
        return None


def decode_data_url(url: str, max_bytes: int) -> bytes:
    try:
        head, data = url.split(",", 1)
        if ";base64" in head and len(data) > (max_bytes + 2) // 3 * 4 + 4:
            raise UrlRefused(f"image larger than {max_bytes} bytes")
        raw = base64.b64decode(data, validate=True) if ";base64" in head else data.encode()
    except (ValueError, binascii.Error):
        raise UrlRefused("data: URL is not valid base64") from None
    if len(raw) > max_bytes:
        raise UrlRefused(f"image larger than {max_bytes} bytes")
    return raw


async def fetch_image(url: str, settings: Settings) -> bytes:
    """http(s) or data: URL -> bytes; hosts that are not public are refused unless allowed."""
    sc = settings.scoring
    if url.startswith("data:"):
        return decode_data_url(url, sc.max_image_bytes)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError as e:  # e.g. a bad IPv6 literal or port
        raise UrlRefused(f"not a valid URL ({e})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise UrlRefused(f"only http(s) and data: image URLs are fetched, not {url[:60]!r}")
    check = partial(netguard.resolve_checked, host, allow_private=sc.allow_private_urls)
    try:
        addresses = await asyncio.get_running_loop().run_in_executor(None, check)
    except netguard.UrlRefusedError as e:
        # one answer for "internal", "metadata" and "does not resolve": no DNS oracle
        log.info("check API: image_url host %r refused: %s", host[:80], e)
        raise UrlRefused(
            f"image_url host {host[:80]!r}: address not allowed (only hosts that resolve to "
            "public addresses are fetched; an operator may allow private ones with "
            "scoring.allow_private_urls)"
        ) from None
    timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
    connector = aiohttp.TCPConnector(resolver=_Pinned(addresses), use_dns_cache=False)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout, connector=connector) as s,
            s.get(url, allow_redirects=False) as r,
        ):
            if r.status != 200:
                raise UrlRefused(f"fetching {url[:80]} gave HTTP {r.status}")
            body = bytearray()  # read(n) returns only what is buffered: read to the end
            async for chunk in r.content.iter_chunked(1 << 16):
                body += chunk
                if len(body) > sc.max_image_bytes:
                    raise UrlRefused(f"image larger than {sc.max_image_bytes} bytes")
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as e:
        raise UrlRefused(f"fetching {url[:80]} failed ({type(e).__name__})") from None
    return bytes(body)
