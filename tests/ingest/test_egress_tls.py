"""https pulls verify the server's certificate (FFmpeg's default is not to).

Regression for issue 13 ("Known gaps": https through the egress proxy kept FFmpeg's own TLS,
which accepted any certificate). Real TLS servers on loopback with self-signed certificates
made by the openssl command; the guard's resolver answers a public address for `localhost`
(the `world` fixture of test_egress.py), so the servers are reached through the guard.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import av
import pytest
from aiohttp import web

from ingest.egress import Egress
from tests.ingest.helpers import self_signed
from tests.ingest.test_egress import Server, pull, world  # noqa: F401 - the fixture

pytestmark = pytest.mark.timeout(120)


@asynccontextmanager
async def tls_server(server: Server, ctx: ssl.SSLContext) -> AsyncIterator[int]:
    runner = web.AppRunner(server.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


def hls_server(hls_dir: Path, **extra: Callable[[web.Request], web.Response]) -> Server:
    s = Server()
    s.app.router.add_static("/hls/", hls_dir)
    for path, handler in extra.items():
        s.app.router.add_get(f"/{path}", handler)
    return s


@pytest.fixture
def hls_dir(tmp_path: Path) -> Path:
    from tests.ingest.helpers import make_hls, video

    make_hls(video("doorknob-hd-no-bar.mp4"), tmp_path / "hls")
    return tmp_path / "hls"


@pytest.mark.usefixtures("world")
async def test_a_self_signed_server_is_refused_unless_its_ca_is_configured(
    make_settings, hls_dir, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    ctx, cert = self_signed(tmp_path / "a")
    server = hls_server(hls_dir)
    async with tls_server(server, ctx) as port:
        url = f"https://localhost:{port}/hls/live.m3u8"
        read, error = await pull(make_settings, url)
        assert read == 0 and error is not None
        assert "certificate" in error and "not trusted" in error
        assert "ingest.tls_ca_file" in error  # what to do about it
        assert server.hits == []  # not one HTTP request went to the untrusted server
        read, error = await pull(make_settings, url, tls_ca_file=str(cert))
        # its CA configured: the whole video (the 66 of 120 frames that are decoded with
        # ingest.decode_skip_nonref)
        assert error is None and read >= 66


@pytest.mark.usefixtures("world")
async def test_hls_entries_on_an_untrusted_server_are_refused(
    make_settings, hls_dir, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """FFmpeg's HLS demuxer opens variants and segments without the pull's TLS options; the
    proxy verifies those tunnels itself."""
    trusted_ctx, trusted_cert = self_signed(tmp_path / "trusted")
    other_ctx, _ = self_signed(tmp_path / "other")
    other = hls_server(hls_dir)
    async with tls_server(other, other_ctx) as other_port:
        master = (
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n"
            f"https://localhost:{other_port}/hls/live.m3u8\n"
        )
        first = hls_server(hls_dir, **{"master.m3u8": lambda _r: web.Response(text=master)})
        async with tls_server(first, trusted_ctx) as port:
            read, error = await pull(
                make_settings,
                f"https://localhost:{port}/master.m3u8",
                tls_ca_file=str(trusted_cert),
            )
    assert first.hits == ["/master.m3u8"]
    assert other.hits == [] and read == 0
    assert error is not None and "not trusted" in error


async def test_ffmpeg_itself_verifies_with_the_pulls_options(hls_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The options every http(s) pull hands FFmpeg make FFmpeg refuse the certificate on its
    own (the connection FFmpeg opens is verified end to end, not only the proxy's probe)."""
    ctx, cert = self_signed(tmp_path / "a")
    async with tls_server(hls_server(hls_dir), ctx) as port:
        eg = Egress(f"https://localhost:{port}/hls/live.m3u8", allow_private=True)
        opts = {k: v for k, v in eg.plan().options.items() if k != "http_proxy"}  # direct
        assert opts["tls_verify"] == "1" and opts["ca_file"] == eg.ca_file
        with pytest.raises(av.error.FFmpegError):
            await asyncio.to_thread(av.open, eg.source, options={**opts, "rw_timeout": "8000000"})
        trusted = {**opts, "ca_file": str(cert)}
        with await asyncio.to_thread(av.open, eg.source, options=trusted) as c:
            assert c.streams.video
