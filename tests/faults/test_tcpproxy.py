"""The TCP proxy the network-cut scenario relies on, on real sockets."""

from __future__ import annotations

import asyncio

import pytest

from devkit.tcpproxy import TcpProxy

pytestmark = [pytest.mark.faults, pytest.mark.quick]


async def _echo_server() -> tuple[asyncio.Server, int]:
    async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while data := await r.read(1024):
            w.write(data)
            await w.drain()
        w.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _roundtrip(port: int, msg: bytes = b"ping") -> bytes:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(msg)
    await w.drain()
    data = await asyncio.wait_for(r.read(1024), 2)
    w.close()
    return data


async def test_forwards_cuts_and_restores() -> None:
    server, up = await _echo_server()
    async with server, TcpProxy(("127.0.0.1", up)) as proxy:
        assert await _roundtrip(proxy.port) == b"ping"
        # an open connection is broken by the cut, like a lost route
        r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
        await proxy.cut()
        w.write(b"lost")
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await w.drain()
            if not await asyncio.wait_for(r.read(1024), 2):
                raise ConnectionResetError("closed")
        # new connections are refused while cut
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            if not await _roundtrip(proxy.port):
                raise ConnectionResetError("closed")
        proxy.restore()
        assert await _roundtrip(proxy.port, b"back") == b"back"
        assert proxy.bytes_forwarded >= 2 * len(b"pingback")


async def test_blackhole_holds_connections_without_a_byte() -> None:
    server, up = await _echo_server()
    async with server, TcpProxy(("127.0.0.1", up)) as proxy:
        await proxy.cut(blackhole=True)
        r, w = await asyncio.open_connection("127.0.0.1", proxy.port)  # accepted...
        w.write(b"hello")
        with pytest.raises(TimeoutError):  # ...but nothing comes back
            await asyncio.wait_for(r.read(1024), 0.5)
        proxy.restore()  # held connections are closed; the client reconnects
        assert await asyncio.wait_for(r.read(1024), 2) == b""
        assert await _roundtrip(proxy.port) == b"ping"


async def test_a_fixed_port_can_be_reused_right_away() -> None:
    server, up = await _echo_server()
    async with server:
        first = await TcpProxy(("127.0.0.1", up)).start()
        port = first.port
        assert await _roundtrip(port) == b"ping"
        await first.close()
        async with TcpProxy(("127.0.0.1", up), port=port) as again:
            assert await _roundtrip(again.port) == b"ping"
