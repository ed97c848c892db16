"""The fault suite's stack and media: Kafka with a proxied listener, Redis, live sources."""

from __future__ import annotations

import asyncio
import random
import socket
import uuid
from pathlib import Path

from aiohttp import web

from devkit.tcpproxy import TcpProxy
from framewatch.local import KafkaBroker, RedisServer, ensure_jars, free_port
from framewatch.settings import Settings, load_settings

# ------------------------------------------------------------------------------------------
# the stack: a broker with a second listener advertised on a proxy port, and Redis


class Stack:
    """Kafka (KRaft) + Redis on free ports under one folder; the broker also listens on a
    PROXIED listener that advertises ``proxy_port``, so a client bootstrapped through a
    TcpProxy on that port keeps talking through it (Kafka metadata would otherwise hand it
    the broker's own address)."""

    def __init__(self, base: Settings, root: Path) -> None:
        self.base, self.root = base, root
        # the proxy's port is held from now on: picked here, listened on minutes later by a
        # scenario, it could meanwhile become the source port of any outgoing connection
        self._proxy_sock = socket.create_server(("127.0.0.1", 0))
        self.proxy_port = int(self._proxy_sock.getsockname()[1])
        self._proxied = free_port()
        jars = ensure_jars(base.local.cache_dir, base.local.kafka_version)
        self.broker = KafkaBroker(
            jars, root / "kafka", free_port(), free_port(), base.local.kafka_heap,
            proxy_listener=(self._proxied, self.proxy_port),
        )  # fmt: skip
        self.redis = RedisServer(root / "redis", free_port())
        self.media = root / "media"

    def proxy(self) -> TcpProxy:
        """A proxy to the broker's proxied listener on the port this stack holds."""
        return TcpProxy(self.proxied_upstream, self.proxy_port, sock=self._proxy_sock.dup())

    @property
    def proxied_upstream(self) -> tuple[str, int]:
        return ("127.0.0.1", self._proxied)

    def start(self) -> Stack:
        self.redis.start()
        self.broker.start()
        self.media.mkdir(parents=True, exist_ok=True)
        return self

    def stop(self) -> None:
        self._proxy_sock.close()
        self.broker.stop(keep_data=False)
        self.redis.stop(keep_data=False)

    def settings(self, name: str) -> Settings:
        """Settings of one scenario: its own topics, Redis keys, groups, folders, metric ports."""
        unique = f"f-{name}-{uuid.uuid4().hex[:6]}"
        d = self.root / unique
        (d / "policies").mkdir(parents=True, exist_ok=True)
        return load_settings(
            kafka_bootstrap=self.broker.bootstrap,
            redis_url=self.redis.url,
            redis_prefix=f"{unique}:",
            topics={"prefix": f"{unique}.", "partitions": 3, "account_partitions": 3},
            metrics={
                "enabled": True,
                # each service binds a port the kernel picks and writes it here: a port
                # picked now and bound later can meanwhile become some connection's source port
                "port_dir": d / "metrics-ports",
                "ingest_port": 0,
            },
            local={"state_dir": d / "local"},
            ingest={"allow_private_urls": True},
            scoring={"group_id": f"{unique}-scorer", "text_every": 0},
            streams={
                "data_dir": d / "streams",
                "policy_dir": d / "policies",
                "reload_interval_s": 1.0,
            },
            alerts={
                "group_id": f"{unique}-alerts",
                "http_port": 0,
                "backoff_base_s": 0.5,
                "backoff_max_s": 2.0,
                "max_attempts": 100,
            },
        )


# ------------------------------------------------------------------------------------------
# media: looped live streams, the offender's clip, a live MPEG-TS over HTTP


def remux(src: Path, dst: Path, seconds: float, fmt: str | None = None) -> Path:
    """Copy src's video packets (no re-encode) into dst, looping or cutting to `seconds`."""
    import av

    if dst.exists():
        return dst
    tmp = dst.with_suffix(".part" + dst.suffix)
    with av.open(str(tmp), "w", format=fmt) as out:
        vout = None
        offset, end = 0, 0
        while True:
            with av.open(str(src)) as inp:
                vin = inp.streams.video[0]
                if vout is None:
                    vout = out.add_stream_from_template(vin)
                tb = float(vin.time_base)
                limit = int(seconds / tb)
                for pkt in inp.demux(vin):
                    if pkt.dts is None or pkt.pts is None:
                        continue
                    if pkt.pts + offset >= limit and pkt.is_keyframe:
                        break
                    end = max(end, pkt.pts + offset + (pkt.duration or 0))
                    pkt.pts += offset
                    pkt.dts += offset
                    pkt.stream = vout
                    out.mux(pkt)
                else:
                    offset = end
                    if offset < limit:
                        continue
            break
    tmp.rename(dst)
    return dst


def corrupt_copy(src: Path, dst: Path, at: float = 0.5, size: int = 200_000) -> Path:
    """src with `size` bytes of noise written over its middle: garbage mid-stream in a file."""
    data = bytearray(src.read_bytes())
    start = int(len(data) * at)
    data[start : start + size] = random.Random(7).randbytes(min(size, len(data) - start))
    dst.write_bytes(bytes(data))
    return dst


class LiveTs:
    """A live MPEG-TS over HTTP, paced in real time; can stall or spit garbage on demand."""

    def __init__(self, ts: Path) -> None:
        self.data = ts.read_bytes()
        import av

        with av.open(str(ts)) as c:
            self.rate = len(self.data) / (c.duration / 1_000_000)
        self.paused = asyncio.Event()
        self.paused.set()  # set = flowing
        self.garbage_next = 0
        self.pos = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/live.ts", self._serve)
        # its handlers stream until the client goes: closing waits 1 s for them, not
        # aiohttp's 60 s (every test that closed one waited a minute)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/live.ts"
        self._clock = asyncio.create_task(self._tick())

    async def close(self) -> None:
        self._clock.cancel()
        if self._runner:
            await self._runner.cleanup()

    async def _tick(self) -> None:
        """The live edge advances in real time (wrapping around), except while stalled."""
        step = 0.1
        while True:
            await self.paused.wait()
            await asyncio.sleep(step)
            self.pos = (self.pos + int(self.rate * step)) % len(self.data)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "video/mp2t"})
        await resp.prepare(request)
        sent = self.pos - self.pos % 188  # join at the live edge, on a TS packet boundary
        try:
            while True:
                await self.paused.wait()
                if self.garbage_next:
                    await resp.write(random.randbytes(self.garbage_next))
                    self.garbage_next = 0
                edge = self.pos
                if edge < sent:  # wrapped around
                    await resp.write(self.data[sent:])
                    sent = 0
                if edge > sent:
                    await resp.write(self.data[sent:edge])
                    sent = edge
                await asyncio.sleep(0.05)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp
