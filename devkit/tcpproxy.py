"""A small asyncio TCP proxy whose link can be cut and restored: network faults on demand.

Point a client at ``127.0.0.1:proxy.port`` and it reaches ``upstream``. ``cut()`` drops every
open connection and refuses new ones until ``restore()`` (like a partition where the peer's
host answers with RST); ``cut(blackhole=True)`` instead accepts and holds new connections
without forwarding a byte (like packets silently dropped), which is what a firewall does.

For Kafka, the broker must advertise the proxy's port on the listener the proxy forwards to,
otherwise the client learns the broker's real address from metadata and bypasses the proxy:
``framewatch.local.KafkaBroker(proxy_listener=(listen_port, proxy.port))`` does that.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket


class TcpProxy:
    """Forward 127.0.0.1:<port> to upstream (host, port); cut and restore at will."""

    def __init__(
        self,
        upstream: tuple[str, int],
        port: int = 0,
        host: str = "127.0.0.1",
        sock: socket.socket | None = None,
    ) -> None:
        """``sock``: an already bound socket to listen on (a port reserved earlier and kept,
        so nothing else can take it between choosing and listening)."""
        self.upstream = upstream
        self.host, self.port = host, port
        self._sock = sock
        self.cut_now = False
        self.blackhole = False
        self.connections = 0  # accepted so far (forwarded or refused)
        self.bytes_forwarded = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()
        self._held: set[asyncio.StreamWriter] = set()

    async def start(self) -> TcpProxy:
        sock = self._sock
        if sock is None:
            # bind explicitly so a fixed port can be reused right after a previous proxy closed
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        self._server = await asyncio.start_server(self._accept, sock=sock)
        self.port = sock.getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server:
            self._server.close()
        await self._drop_all()
        if self._server:
            await self._server.wait_closed()

    async def __aenter__(self) -> TcpProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def cut(self, blackhole: bool = False) -> None:
        """Break the link: open connections are reset; new ones refused (or held, blackhole)."""
        self.cut_now, self.blackhole = True, blackhole
        await self._drop_all()

    def restore(self) -> None:
        """Forward again; clients reconnect on their own."""
        self.cut_now = False
        for w in list(self._held):  # held connections never saw a byte: close, client retries
            w.close()
        self._held.clear()

    async def _drop_all(self) -> None:
        for t in list(self._links):
            t.cancel()
        await asyncio.gather(*self._links, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.cut_now:
            if self.blackhole:
                self._held.add(writer)
                return
            _reset(writer)
            return
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        up_w: asyncio.StreamWriter | None = None
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream)
            await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._links.discard(task)
            _reset(writer)
            if up_w is not None:
                _reset(up_w)

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while data := await r.read(65536):
            self.bytes_forwarded += len(data)
            w.write(data)
            await w.drain()
        with contextlib.suppress(OSError):
            w.write_eof()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a broken network path looks to the peer."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
    writer.close()
