"""SSRF through FFmpeg: every connection of a pull is checked, not only the registered URL.

Real servers on loopback play both sides. The guard's resolver is patched so that `localhost`
"looks public" (it answers 93.184.216.34), and connections the guard makes to that address are
routed to a loopback server; anything FFmpeg reaches at 127.0.0.1 directly is "internal". Each
test counts what the internal server was asked: on the old code FFmpeg reached it (and decoded
its frames); with the egress guard it never does.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import pytest
from aiohttp import web

from framewatch import netguard
from framewatch.kafkaio import create_topics
from framewatch.settings import Settings
from ingest.egress import Egress
from ingest.engine import StreamMeta
from ingest.errors import SourceError
from ingest.rtmpwire import ChunkReader, command
from ingest.runner import StreamIngester
from tests.ingest.helpers import make_hls, self_signed, video

pytestmark = pytest.mark.timeout(120)

PUBLIC = "93.184.216.34"


@dataclass
class World:
    """What `localhost` resolves to for the guard, and where PUBLIC:port really goes."""

    answers: Callable[[], str] = lambda: PUBLIC
    routes: dict[int, int] = field(default_factory=dict)  # PUBLIC port -> loopback port


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    w = World()
    real = socket.getaddrinfo

    def fake_getaddrinfo(host, *args, **kw):  # type: ignore[no-untyped-def]
        if host == "localhost":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (w.answers(), 0))]
        return real(host, *args, **kw)

    real_dial = netguard._dial

    async def dial(address: str, port: int):  # type: ignore[no-untyped-def]
        if address == PUBLIC:
            return await real_dial("127.0.0.1", w.routes.get(port, port))
        return await real_dial(address, port)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(netguard, "_dial", dial)
    return w


class Server:
    """An aiohttp server on loopback that counts the requests it was sent."""

    def __init__(self) -> None:
        self.app = web.Application(middlewares=[self._count])
        self.hits: list[str] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    @web.middleware
    async def _count(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        self.hits.append(request.path)
        return await handler(request)

    async def start(self) -> Server:
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
def hls_dir(tmp_path: Path) -> Path:
    make_hls(video("doorknob-hd-no-bar.mp4"), tmp_path / "hls")
    return tmp_path / "hls"


@pytest.fixture
async def internal(hls_dir: Path) -> AsyncIterator[Server]:
    s = Server()
    s.app.router.add_static("/hls/", hls_dir)
    yield await s.start()
    await s.stop()


@pytest.fixture
async def public() -> AsyncIterator[Server]:
    s = Server()
    yield s
    await s.stop()


async def pull(make_settings, url: str, **ingest: object) -> tuple[int, str | None]:  # type: ignore[no-untyped-def]
    """Run one pull to its end: (frames read, error message or None)."""
    settings: Settings = make_settings(
        ingest={
            "reconnect_on_end": False,
            "reconnect_max_attempts": 1,
            "open_timeout_s": 8,
            "read_timeout_s": 8,
            "reconnect_initial_s": 0.1,
            **ingest,
        }
    )
    await create_topics(settings)
    ing = StreamIngester(settings, url, StreamMeta("ssrf", "acct"))
    try:
        summary = await asyncio.wait_for(ing.run(), 60)
    except SourceError as exc:
        return ing.engine.counts.read, str(exc)
    return summary.read, None


async def test_http_redirect_to_an_internal_host_is_refused(
    make_settings, world, public, internal
) -> None:  # type: ignore[no-untyped-def]
    target = f"http://127.0.0.1:{internal.port}/hls/live.m3u8"
    public.app.router.add_get("/live.m3u8", lambda r: web.HTTPFound(target))
    await public.start()
    read, error = await pull(make_settings, f"http://localhost:{public.port}/live.m3u8")
    assert public.hits == ["/live.m3u8"]
    assert internal.hits == [] and read == 0
    assert error is not None and "refused" in error


async def test_hls_master_playlist_variant_on_an_internal_host_is_refused(
    make_settings, world, public, internal
) -> None:  # type: ignore[no-untyped-def]
    master = (
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=1280x720\n"
        f"http://127.0.0.1:{internal.port}/hls/live.m3u8\n"
    )
    public.app.router.add_get("/master.m3u8", lambda r: web.Response(text=master))
    await public.start()
    read, error = await pull(make_settings, f"http://localhost:{public.port}/master.m3u8")
    assert internal.hits == [] and read == 0
    assert error is not None and "refused" in error


async def test_hls_segments_on_an_internal_host_are_refused(
    make_settings, world, public, internal, hls_dir
) -> None:  # type: ignore[no-untyped-def]
    base = f"http://127.0.0.1:{internal.port}/hls/"
    lines = (hls_dir / "live.m3u8").read_text().splitlines()
    media = "\n".join(ln if ln.startswith("#") or not ln else base + ln for ln in lines) + "\n"
    public.app.router.add_get("/media.m3u8", lambda r: web.Response(text=media))
    await public.start()
    read, error = await pull(make_settings, f"http://localhost:{public.port}/media.m3u8")
    assert internal.hits == [] and read == 0
    assert error is not None and "refused" in error


async def test_dns_rebinding_between_check_and_connection_is_refused(
    make_settings, world, internal, hls_dir
) -> None:  # type: ignore[no-untyped-def]
    """The name answers a public address to the first lookup and loopback afterwards."""
    calls = []

    def answers() -> str:
        calls.append(1)
        return PUBLIC if len(calls) == 1 else "127.0.0.1"

    world.answers = answers
    read, error = await pull(make_settings, f"http://localhost:{internal.port}/hls/live.m3u8")
    assert internal.hits == [] and read == 0
    assert error is not None and "refused" in error


async def test_each_reconnect_is_checked_again(make_settings, world, public, hls_dir) -> None:  # type: ignore[no-untyped-def]
    """A first life from a public address; then the name points inside: the reconnect is
    refused and the pull ends, instead of reading the internal server."""
    public.app.router.add_static("/hls/", hls_dir)
    await public.start()
    moved = asyncio.Event()

    def answers() -> str:
        return "127.0.0.1" if moved.is_set() else PUBLIC

    world.answers = answers

    async def flip() -> None:
        while not any(h.endswith(".ts") for h in public.hits):
            await asyncio.sleep(0.05)
        moved.set()

    flipper = asyncio.create_task(flip())
    read, error = await pull(
        make_settings, f"http://localhost:{public.port}/hls/live.m3u8", reconnect_on_end=True,
        reconnect_max_attempts=3,
    )  # fmt: skip
    flipper.cancel()
    assert read > 0  # the first life was read through the guard
    assert public.hits.count("/hls/live.m3u8") == 1  # no second connection reached the server
    assert error is not None and "refused" in error


class TcpServer:
    """A loopback TCP server on a free port; subclasses implement ``_handle``."""

    port = 0
    _server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def start(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()


class RtspServer(TcpServer):
    """A tiny RTSP responder: answers every request with `status` (+ Location), counts them."""

    def __init__(self, status: str = "404 Not Found", location: str = "") -> None:
        self.status, self.location = status, location
        self.requests: list[str] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                lines = head.decode().split("\r\n")
                self.requests.append(lines[0])
                cseq = next(
                    (ln.split(":")[1].strip() for ln in lines if ln.lower().startswith("cseq")), "1"
                )
                extra = f"Location: {self.location}\r\n" if self.location else ""
                writer.write(f"RTSP/1.0 {self.status}\r\nCSeq: {cseq}\r\n{extra}\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def test_rtsp_redirect_to_an_internal_host_is_refused(make_settings, world) -> None:  # type: ignore[no-untyped-def]
    inside = await RtspServer().start()
    outside = await RtspServer("302 Moved", f"rtsp://127.0.0.1:{inside.port}/cam").start()
    try:
        _read, error = await pull(make_settings, f"rtsp://localhost:{outside.port}/cam")
    finally:
        inside.stop()
        outside.stop()
    assert outside.requests  # FFmpeg did talk to the public server
    assert inside.requests == []
    assert error is not None and "redirect" in error


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """A self-signed certificate for localhost; pulls trust it only through ingest.tls_ca_file
    (tests/ingest/test_egress_tls.py: without it, it is refused)."""
    return self_signed(tmp_path_factory.mktemp("tls"))


async def test_https_goes_through_a_checked_tunnel(make_settings, world, hls_dir, tls) -> None:  # type: ignore[no-untyped-def]
    """https: FFmpeg tunnels with CONNECT; the tunnel is opened to the checked address, and a
    playlist entry pointing inside is refused the same way."""
    inside = Server()
    inside.app.router.add_static("/hls/", hls_dir)
    await inside.start()
    outside = Server()
    outside.app.router.add_static("/hls/", hls_dir)
    master = (
        f"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhttps://127.0.0.1:{inside.port}/hls/live.m3u8\n"
    )
    outside.app.router.add_get("/master.m3u8", lambda r: web.Response(text=master))
    runner = web.AppRunner(outside.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls[0])
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    ca = {"tls_ca_file": str(tls[1])}
    try:
        read, error = await pull(make_settings, f"https://localhost:{port}/hls/live.m3u8", **ca)
        # the whole video, over TLS through the tunnel (66 of its 120 frames are referenced,
        # the others are not decoded: ingest.decode_skip_nonref)
        assert read >= 66 and error is None
        read, error = await pull(make_settings, f"https://localhost:{port}/master.m3u8", **ca)
        assert read == 0 and error is not None and "refused" in error
    finally:
        await runner.cleanup()
        await inside.stop()
    assert inside.hits == []


class RtmpProbe(TcpServer):
    """An RTMP endpoint that answers the handshake, records the client's connect command
    (its tcUrl) and hangs up: enough to see where FFmpeg connected and what it asked for."""

    def __init__(self) -> None:
        self.connections = 0
        self.tcurls: list[str] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            c0c1 = await reader.readexactly(1537)
            writer.write(b"\x03" + bytes(1536) + c0c1[1:])  # S0, S1 (simple), S2 = C1
            await reader.readexactly(1536)
            chunks = ChunkReader()
            while data := await reader.read(65536):
                for mtype, payload in chunks.feed(data):
                    cmd = command(mtype, payload)
                    if cmd and cmd[0] == "connect":
                        self.tcurls.append(cmd[2].get("tcUrl"))
                        return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def test_rtmp_goes_to_the_checked_address_and_keeps_its_tcurl(make_settings, world) -> None:  # type: ignore[no-untyped-def]
    probe = await RtmpProbe().start()
    try:
        await pull(make_settings, f"rtmp://localhost:{probe.port}/live/KEY")
    finally:
        probe.stop()
    assert probe.tcurls and set(probe.tcurls) == {f"rtmp://localhost:{probe.port}/live"}


async def test_rtmp_dns_rebinding_is_refused(make_settings, world) -> None:  # type: ignore[no-untyped-def]
    calls = []

    def answers() -> str:
        calls.append(1)
        return PUBLIC if len(calls) == 1 else "127.0.0.1"

    world.answers = answers
    probe = await RtmpProbe().start()
    try:
        _read, error = await pull(make_settings, f"rtmp://localhost:{probe.port}/live/KEY")
    finally:
        probe.stop()
    assert probe.connections == 0
    assert error is not None and "refused" in error


@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        (b"CONNECT 127.0.0.1:16379 HTTP/1.1\r\nHost: 127.0.0.1:16379\r\n\r\n", b"403"),
        (b"GET http://169.254.169.254/latest/meta-data HTTP/1.1\r\n\r\n", b"403"),
        (b"GET http://[::ffff:10.0.0.1]/ HTTP/1.1\r\n\r\n", b"403"),
        (b"GET file:///etc/passwd HTTP/1.1\r\n\r\n", b"400"),
        (b"GET /relative HTTP/1.1\r\n\r\n", b"400"),
    ],
)
async def test_the_proxy_is_no_way_inside(request_head: bytes, status: bytes) -> None:
    """Whatever FFmpeg (or anyone on the host) asks the pull's proxy for, inside is refused."""
    egress = Egress("http://93.184.216.34/live.m3u8", allow_private=False)
    await egress.start()
    try:
        port = int(egress.plan().options["http_proxy"].rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request_head)
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    finally:
        await egress.close()
    assert answer.split(b" ")[1] == status
    assert (egress.refused() is not None) == (status == b"403")
