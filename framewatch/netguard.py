"""The project's one network guard: may framewatch connect to this host on a user's behalf?

Every address the host name resolves to is checked, so a name with one public and one private
address is refused too. Anything that is not globally routable is refused: loopback, private,
carrier-grade NAT (100.64.0.0/10, where some cloud metadata services live), link-local (cloud
metadata 169.254.169.254), 6to4 relay anycast (192.88.99.0/24) and 6to4 (2002::/16, which
embeds any IPv4 address), multicast, reserved and unspecified; IPv4-mapped IPv6 addresses are
judged by their IPv4 address. Callers connect to the addresses :func:`check_host` returned (the
checked ones), never resolve again, so DNS rebinding between check and connect has no gap.

The refusal names the host only, never what it resolves to, and says the same whether the name
resolves to an internal address or does not resolve: a client cannot use it to map our network.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable

from framewatch.errors import FramewatchError

log = logging.getLogger(__name__)
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
# global by IANA's table, but a relay into arbitrary IPv4 space: refused explicitly
_RELAYS = (ipaddress.ip_network("192.88.99.0/24"), ipaddress.ip_network("2002::/16"))

Resolver = Callable[[str], list[str]]


class AddressRefused(FramewatchError):
    """A host we will not connect to (internal, reserved or unresolvable address)."""


def resolve(host: str) -> list[str]:
    """Every address of `host` (A and AAAA); raises AddressRefused when it has none."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:
        log.info("netguard: cannot resolve %r (%s)", host[:253], exc)
        raise _refused(host) from None
    return sorted({str(info[4][0]) for info in infos})


def is_internal(address: str) -> bool:
    """True for addresses an outside-facing fetcher must not reach."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in net for net in _RELAYS if net.version == ip.version):
        return True
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def _refused(host: str, hint: str = "") -> AddressRefused:
    return AddressRefused(
        f"{host[:253]!r} refused: address not allowed (only hosts that resolve to public addresses "
        f"are fetched){'; ' + hint if hint else ''}"
    )


def check_host(
    host: str, *, allow_private: bool = False, resolve: Resolver = resolve, hint: str = ""
) -> list[str]:
    """The addresses of `host` to connect to, all checked; AddressRefused if any is internal.

    `hint` is appended to a refusal (e.g. the setting that allows private addresses).
    """
    name = host.lower().rstrip(".").strip("[]")
    if not name:
        raise _refused(host, hint)
    try:
        addresses = [str(ipaddress.ip_address(name))]
    except ValueError:
        if not allow_private and name in METADATA_HOSTS:
            raise _refused(host, hint) from None
        try:
            addresses = resolve(name)
        except AddressRefused:
            raise _refused(host, hint) from None
    if not addresses:
        raise _refused(host, hint)
    if allow_private:
        return addresses
    bad = [a for a in addresses if is_internal(a)]
    if bad:
        log.info("netguard: %r refused, internal address(es) %s", host[:253], ", ".join(bad))
        raise _refused(host, hint)
    return addresses
