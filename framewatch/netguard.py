"""The one network guard: which addresses framewatch may fetch from on a user's behalf (SSRF).

Every stage that opens a connection to a URL it was handed (ingest pulls, the check API's image
URLs) asks this module, so there is one rule for the whole project. An address is allowed only
when it is globally routable (Python's ``ipaddress`` ``is_global``) and none of the ranges below:
the ones ``is_global`` lets through but that reach internal hosts anyway.

* 100.64.0.0/10 (carrier-grade NAT; Alibaba Cloud's metadata service lives at 100.100.100.200),
* 192.88.99.0/24 (6to4 relay anycast),
* 2002::/16 (6to4, deprecated by RFC 7526; ``2002:7f00:1::`` tunnels to loopback),
* IPv6 that carries an IPv4 address: NAT64 64:ff9b::/96 and 64:ff9b:1::/48 (DNS64 answers for
  public IPv4 hosts stay allowed), IPv4-mapped and -compatible (``::ffff:127.0.0.1``), Teredo:
  the embedded IPv4 address is checked,
* multicast, reserved, unspecified, loopback, private, link-local.

A host name is resolved once; *every* address it has must pass, and the caller connects to the
addresses that were checked (:func:`resolve_checked`), never resolving again: a DNS answer that
changes between the check and the connection (rebinding) cannot slip through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from framewatch.errors import FramewatchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], list[str]]

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
_EXTRA_V4 = tuple(ipaddress.ip_network(n) for n in ("100.64.0.0/10", "192.88.99.0/24", "0.0.0.0/8"))
_NAT64 = tuple(ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48"))
_EXTRA_V6 = (ipaddress.ip_network("2002::/16"),)


class UrlRefusedError(FramewatchError):
    """A URL or address framewatch will not connect to (scheme, or an internal address)."""


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 transition address carries, if it is one."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(ip))
    return None


def is_internal(address: str | IPAddress) -> bool:
    """True for addresses an outside-facing fetcher must not reach (see the module doc)."""
    ip = address if not isinstance(address, str) else ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in net for net in _EXTRA_V6):
            return True
        inner = _embedded_v4(ip)
        if inner is not None:
            return is_internal(inner)
    elif any(ip in net for net in _EXTRA_V4):
        return True
    return (
        not ip.is_global
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_loopback
        or ip.is_private
        or ip.is_link_local
    )


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]").split("%")[0]))
    except ValueError:
        return None


def resolve(host: str) -> list[str]:
    """Every address `host` has (an IP literal is itself); UrlRefusedError when it has none."""
    if (literal := _literal(host)) is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UrlRefusedError(f"cannot resolve host {host[:80]!r} ({exc}); check the URL") from None
    out = sorted({str(info[4][0]).split("%")[0] for info in infos})
    if not out:
        raise UrlRefusedError(f"host {host[:80]!r} resolves to no address; check the URL")
    return out


def resolve_checked(
    host: str, *, allow_private: bool = False, resolver: Resolver | None = None
) -> list[str]:
    """The addresses to connect to for `host`, each one checked; raise UrlRefusedError if any
    is internal. Connect to these, never to the name: that is what pins the check.

    The message names the host but not what it resolved to, so an error cannot be used to
    map the internal network (no DNS oracle).
    """
    name = host.lower().rstrip(".")
    if not allow_private and name in METADATA_HOSTS:
        raise UrlRefusedError(f"host {host[:80]!r} is a cloud metadata service; refused")
    literal = _literal(host)
    addresses = [literal] if literal is not None else (resolver or resolve)(host)
    if not addresses:
        raise UrlRefusedError(f"host {host[:80]!r} resolves to no address; check the URL")
    if not allow_private and any(is_internal(a) for a in addresses):
        raise UrlRefusedError(
            f"host {host[:80]!r} is or resolves to an internal address; refused. Only public "
            "addresses are fetched (an operator may allow private ones with the stage's "
            "allow_private_urls setting)"
        )
    return addresses


def check_url(
    url: str,
    schemes: frozenset[str],
    *,
    allow_private: bool = False,
    resolver: Resolver | None = None,
) -> list[str]:
    """Check a URL's scheme and host; return its checked addresses (see resolve_checked)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise UrlRefusedError(f"not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        raise UrlRefusedError(
            f"scheme {scheme or '(none)'!r} is not allowed here; use one of "
            + ", ".join(sorted(schemes))
        )
    if not host:
        raise UrlRefusedError("the URL has no host name")
    return resolve_checked(host, allow_private=allow_private, resolver=resolver)


async def _dial(address: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(address, port)


async def connect(
    host: str, port: int, *, allow_private: bool = False, timeout_s: float = 10.0
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to `host`:`port` made to a checked address (the first that answers)."""
    _address, reader, writer = await open_checked(
        host, port, allow_private=allow_private, timeout_s=timeout_s
    )
    return reader, writer


async def open_checked(
    host: str, port: int, *, allow_private: bool = False, timeout_s: float = 10.0
) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
    """:func:`connect`, also saying which checked address answered (to connect to it again,
    as a literal, without another lookup)."""
    addresses = await asyncio.to_thread(resolve_checked, host, allow_private=allow_private)
    last: Exception | None = None
    for address in addresses:
        try:
            async with asyncio.timeout(timeout_s):
                reader, writer = await _dial(address, port)
        except (OSError, TimeoutError) as exc:
            last = exc
        else:
            return address, reader, writer
    raise OSError(f"cannot connect to {host[:80]}:{port} ({last})")
