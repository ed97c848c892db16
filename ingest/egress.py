"""Egress of pulls: every connection FFmpeg makes for a pull goes through the network guard.

Checking the registered URL in Python is not enough: FFmpeg resolves the name again (DNS
rebinding), follows HTTP 302s and RTSP redirects, opens the variant and segment URLs an HLS
playlist names, and reconnects without asking. So FFmpeg is never given a route of its own:

* **http/https (HLS included)**: FFmpeg's ``http_proxy`` points at a proxy on 127.0.0.1 that
  this module runs for the pull. Every request (absolute-form ``GET`` for http, ``CONNECT`` for
  https: TLS stays end to end, SNI and all) is checked when it arrives, redirect targets and
  playlist entries included, and the proxy connects to the addresses it checked
  (:func:`framewatch.netguard.connect`), never to the name.
* **certificates**: FFmpeg verifies the server it opens (``tls_verify=1``, ``ca_file`` =
  :func:`ca_bundle`). FFmpeg's HLS demuxer does not pass those options on to the variant,
  segment and key URLs it opens itself, so the proxy also verifies, before it opens a CONNECT
  tunnel, that the checked address holds a certificate for the name (same CA bundle), and
  refuses the tunnel otherwise.
* **rtmp/rtmps/rtsp/rtsps**: FFmpeg opens ``127.0.0.1:<forwarder>`` instead of the host; the
  forwarder resolves, checks and connects for each connection (so each reconnect is checked
  again), originates TLS itself for rtmps/rtsps (SNI = the real host, certificate verified), and
  for RTSP reads the server's answers and cuts the connection on a ``3xx`` redirect (FFmpeg would
  follow it with a connection of its own). RTSP is forced onto TCP (``rtsp_transport=tcp``), so
  no media arrives from an address the SDP names. RTMP keeps its tcUrl (``rtmp_tcurl``).
* **srt** (absent from this FFmpeg build): the checked address is pinned into the URL.

``protocol_whitelist`` limits FFmpeg to the protocols each plan needs (no ``file``, ``udp``,
``data`` or ``subfile`` from a playlist). A refused connection is recorded; the runner then ends
the pull with ``url_refused`` instead of reconnecting into it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from framewatch import netguard
from framewatch.redact import mask_url
from framewatch.tasks import cancel_and_wait
from ingest.metrics import EGRESS_REFUSED
from ingest.rtspguard import RtspRedirectError, RtspWatch

log = logging.getLogger(__name__)

PULL_SCHEMES = frozenset({"rtmp", "rtmps", "rtsp", "rtsps", "srt", "http", "https"})
DEFAULT_PORTS = {"rtmp": 1935, "rtmps": 443, "rtsp": 554, "rtsps": 322, "http": 80, "https": 443}
_HOP_HEADERS = ("connection", "keep-alive", "proxy-connection", "proxy-authorization")
_BUF = 64 * 1024


def ca_bundle(configured: Path | None) -> str:
    """The CA bundle pulls verify servers against: ``ingest.tls_ca_file``, else the system's
    (the FFmpeg that PyAV ships has no usable default of its own), else certifi's."""
    if configured is not None:
        return str(configured)
    system = ssl.get_default_verify_paths().cafile
    if system and os.path.isfile(system):
        return system
    import certifi

    return str(certifi.where())


def check(url: str, *, allow_private: bool) -> list[str]:
    """The pull URL's checked addresses, or UrlRefusedError (scheme or internal address)."""
    return netguard.check_url(url, PULL_SCHEMES, allow_private=allow_private)


@dataclass(frozen=True)
class Plan:
    """What FFmpeg is given for one pull: the URL it opens and its options."""

    url: str
    options: dict[str, str] = field(default_factory=dict)


class Egress:
    """The guarded route of one pull; ``await start()`` on the ingester's loop, then
    :meth:`plan`; ``await close()`` when the pull ends."""

    def __init__(
        self,
        source: str,
        *,
        allow_private: bool,
        timeout_s: float = 10.0,
        ca_file: Path | None = None,
    ) -> None:
        self.source = source
        self.ca_file = ca_bundle(ca_file)
        self.tls = ssl.create_default_context(cafile=self.ca_file)
        self.parts = urlsplit(source)
        self.scheme = self.parts.scheme.lower()
        self.allow_private = allow_private
        self.timeout_s = timeout_s
        self.refusals: list[str] = []
        self._server: asyncio.Server | None = None
        self._port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self.scheme == "srt":
            return
        handler = self._proxy if self.scheme in ("http", "https") else self._forward
        self._server = await asyncio.start_server(handler, "127.0.0.1", 0)
        self._port = self._server.sockets[0].getsockname()[1]
        # FFmpeg skips its http_proxy for hosts matched by no_proxy: nothing may bypass the guard
        if os.environ.pop("no_proxy", None) is not None:
            log.warning("no_proxy is ignored for pulls: every pull goes through the guard")

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await cancel_and_wait(list(self._tasks), timeout_s=2, what="proxied connection")
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()
            self._server = None

    def refused(self) -> str | None:
        """Why the guard refused a connection of this pull, if it did."""
        return self.refusals[-1] if self.refusals else None

    def _refuse(self, why: str) -> None:
        self.refusals.append(why)
        EGRESS_REFUSED.inc()
        log.warning("%s: %s", mask_url(self.source), why)

    # ---- what FFmpeg opens ---------------------------------------------------------------
    def plan(self) -> Plan:
        p, local = self.parts, f"127.0.0.1:{self._port}"
        tail = p.path + (f"?{p.query}" if p.query else "")
        userinfo = p.netloc.rpartition("@")[0] + "@" if "@" in p.netloc else ""
        if self.scheme in ("http", "https"):
            return Plan(
                self.source,
                {
                    "http_proxy": f"http://{local}",
                    "protocol_whitelist": "http,https,tls,tcp,httpproxy,crypto",
                    "http_persistent": "0",
                    "multiple_requests": "0",
                    "tls_verify": "1",
                    "ca_file": self.ca_file,
                },
            )
        if self.scheme in ("rtmp", "rtmps"):
            app = p.path.rsplit("/", 1)[0] if p.path.count("/") > 1 else p.path
            port = f":{p.port}" if p.port else ""
            tcurl = f"{self.scheme}://{p.hostname}{port}{app}"
            opts = {"rtmp_tcurl": tcurl, "protocol_whitelist": "rtmp,tcp"}
            return Plan(f"rtmp://{userinfo}{local}{tail}", opts)
        if self.scheme in ("rtsp", "rtsps"):
            opts = {"rtsp_transport": "tcp", "protocol_whitelist": "rtsp,rtp,tcp"}
            return Plan(f"rtsp://{userinfo}{local}{tail}", opts)
        address = check(self.source, allow_private=self.allow_private)[0]  # srt: pinned
        host = f"[{address}]" if ":" in address else address
        return Plan(f"srt://{host}{f':{p.port}' if p.port else ''}{tail}", {})

    # ---- connections ---------------------------------------------------------------------
    async def _connect(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await netguard.connect(
            host, port, allow_private=self.allow_private, timeout_s=self.timeout_s
        )

    def _track(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)  # type: ignore[arg-type]
            task.add_done_callback(self._tasks.discard)  # type: ignore[arg-type]

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """rtmp/rtsp: one FFmpeg connection -> the checked address of the registered host."""
        self._track()
        host, port = self.parts.hostname or "", self.parts.port or DEFAULT_PORTS[self.scheme]
        try:
            try:
                up_r, up_w = await self._connect(host, port)
            except netguard.UrlRefusedError as exc:
                self._refuse(str(exc))
                return
            except OSError as exc:
                log.info("%s: %s", mask_url(self.source), exc)
                return
            if self.scheme in ("rtmps", "rtsps"):
                await up_w.start_tls(self.tls, server_hostname=host)
            watch = RtspWatch() if self.scheme.startswith("rtsp") else None
            try:
                await _splice(reader, writer, up_r, up_w, watch)
            except RtspRedirectError as exc:
                self._refuse(f"the RTSP server redirected to {exc.location}; redirects are not "
                             "followed: register the final URL")  # fmt: skip
        except (OSError, ssl.SSLError) as exc:
            log.info("%s: connection ended (%s)", mask_url(self.source), exc)
        finally:
            writer.close()

    async def _proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """http/https: one proxied request (absolute-form) or CONNECT tunnel, guarded."""
        self._track()
        try:
            async with asyncio.timeout(self.timeout_s):
                head = await reader.readuntil(b"\r\n\r\n")
            line, *headers = head.decode("latin-1").split("\r\n")
            method, target, version = line.split(" ", 2)
            if method.upper() == "CONNECT":
                host, _, port_s = target.rpartition(":")
                await self._tunnel(host.strip("[]"), int(port_s), reader, writer)
                return
            t = urlsplit(target)
            if t.scheme.lower() != "http" or not t.hostname:
                await _answer(writer, 400, "only http:// requests and CONNECT are proxied")
                return
            try:
                up_r, up_w = await self._connect(t.hostname, t.port or 80)
            except netguard.UrlRefusedError as exc:
                self._refuse(f"request to {mask_url(target)} refused: {exc}")
                await _answer(writer, 403, "refused by framewatch's network guard")
                return
            kept = [
                h for h in headers if h and h.split(":", 1)[0].strip().lower() not in _HOP_HEADERS
            ]
            path = (t.path or "/") + (f"?{t.query}" if t.query else "")
            up_w.write(
                f"{method} {path} {version}\r\n".encode("latin-1")
                + "".join(f"{h}\r\n" for h in kept).encode("latin-1")
                + b"Connection: close\r\n\r\n"
            )
            async with asyncio.timeout(self.timeout_s):
                resp = await up_r.readuntil(b"\r\n\r\n")
            status, *rh = resp.decode("latin-1").split("\r\n")
            rkept = [h for h in rh if h and h.split(":", 1)[0].strip().lower() not in _HOP_HEADERS]
            writer.write(
                f"{status}\r\n".encode("latin-1")
                + "".join(f"{h}\r\n" for h in rkept).encode("latin-1")
                + b"Connection: close\r\n\r\n"
            )
            await _splice(reader, writer, up_r, up_w, None)
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                TimeoutError) as exc:  # fmt: skip
            log.info("%s: proxied request ended (%s)", mask_url(self.source), exc)
        finally:
            writer.close()

    async def _tunnel(
        self, host: str, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            address, _probe_r, probe_w = await netguard.open_checked(
                host, port, allow_private=self.allow_private, timeout_s=self.timeout_s
            )
        except netguard.UrlRefusedError as exc:
            self._refuse(f"tunnel to {host[:80]}:{port} refused: {exc}")
            await _answer(writer, 403, "refused by framewatch's network guard")
            return
        problem = await self._untrusted(probe_w, host)
        if problem is not None:
            self._refuse(
                f"the TLS certificate of {host[:80]}:{port} is not trusted ({problem}); pull "
                "from a server whose certificate a public CA issued for that name, or add the "
                "server's CA (PEM) to the setting ingest.tls_ca_file"
            )
            await _answer(writer, 403, "refused: the server's certificate is not trusted")
            return
        up_r, up_w = await self._connect(address, port)  # the address that was verified
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await _splice(reader, writer, up_r, up_w, None)

    async def _untrusted(self, probe: asyncio.StreamWriter, host: str) -> str | None:
        """Why the server on ``probe``'s connection has no certificate valid for ``host`` (by
        :attr:`tls`), or None when it has one; the probe is closed either way."""
        try:
            async with asyncio.timeout(self.timeout_s):
                await probe.start_tls(self.tls, server_hostname=host)
        except ssl.SSLCertVerificationError as exc:
            return str(exc.verify_message or exc.reason)
        except (ssl.SSLError, OSError, TimeoutError) as exc:
            return f"TLS handshake failed: {exc}"
        finally:
            probe.close()
        return None


async def _answer(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    body = message.encode()
    reason = {400: "Bad Request", 403: "Forbidden"}[status]
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}"
        f"\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(OSError):
        await writer.drain()


async def _splice(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_r: asyncio.StreamReader,
    up_w: asyncio.StreamWriter,
    watch: RtspWatch | None,
) -> None:
    """Copy both ways until either side closes; `watch` sees the server's bytes first."""

    async def pump(
        src: asyncio.StreamReader, dst: asyncio.StreamWriter, w: RtspWatch | None
    ) -> None:
        while data := await src.read(_BUF):
            if w is not None:
                w.feed(data)  # raises RtspRedirectError before the redirect reaches FFmpeg
            dst.write(data)
            await dst.drain()

    up = asyncio.create_task(pump(reader, up_w, None))
    down = asyncio.create_task(pump(up_r, writer, watch))
    try:
        done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if (exc := t.exception()) is not None and isinstance(exc, RtspRedirectError):
                raise exc
    finally:
        await cancel_and_wait([up, down], what="relay direction")
        up_w.close()
