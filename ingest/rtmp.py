"""RTMP listen endpoint: platforms publish to ``rtmp://HOST:PORT/live/<stream_key>``.

FFmpeg's RTMP server (``listen=1``) takes one connection per listener, waits as long as it is
told for it, and accepts any publish name. So an asyncio front owns the port instead:

1. it accepts any number of connections (up to ``ingest.rtmp_max_publishers``) and waits at
   most ``ingest.rtmp_handshake_timeout_s`` for the handshake, connect and publish commands;
2. for a connection that has sent a handshake it starts an FFmpeg listener of its own on a
   loopback port and relays the bytes both ways, reading the publisher's chunk stream
   (ingest/rtmpwire.py) as it passes;
3. the ``publish`` command (which names the stream key) is held back until the key is looked
   up (digests only, ingest/streamkeys.py); an unknown key closes both sides, so FFmpeg never
   sees a media byte of it: nothing is decoded;
4. a known key's publisher is ingested like a live pull; silence longer than
   ``ingest.rtmp_idle_timeout_s`` closes it.

An idle or slow connection therefore holds one slot for the handshake timeout, never the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

import av
import av.error
import redis
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from framewatch import deadletter
from framewatch.local import free_port
from framewatch.settings import Settings
from framewatch.tasks import cancel_and_wait
from ingest import streamkeys
from ingest.engine import StreamMeta
from ingest.errors import IngestError, SourceError
from ingest.metrics import RTMP_REFUSED
from ingest.rtmpwire import ChunkReader, RtmpProtocolError, command
from ingest.runner import StreamIngester
from ingest.source import VideoSource

log = logging.getLogger(__name__)

_C0C1 = 1 + 1536
_C2 = 1536


class Refused(Exception):
    """A connection closed before decoding; `reason` is the metric label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RtmpListener:
    """The front on ``ingest.rtmp_host:rtmp_port``; ``await run()`` until cancelled."""

    def __init__(
        self, settings: Settings, producer: AIOKafkaProducer, client: aioredis.Redis
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.client = client
        self.active = 0

    async def run(self) -> None:
        cfg = self.settings.ingest
        server = await asyncio.start_server(self._handle, cfg.rtmp_host, cfg.rtmp_port)
        log.info("RTMP listener on rtmp://%s:%d/live/<stream_key>", cfg.rtmp_host, cfg.rtmp_port)
        async with server:
            await server.serve_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.active >= self.settings.ingest.rtmp_max_publishers:
            RTMP_REFUSED.labels(reason="too_many").inc()
            writer.close()
            return
        self.active += 1
        session = _Session(self, reader, writer)
        try:
            await session.run()
        except Refused as exc:
            RTMP_REFUSED.labels(reason=exc.reason).inc()
            log.warning("RTMP connection from %s refused: %s", session.peer, exc.reason)
        except redis.RedisError as exc:  # the key cannot be checked: refuse, never guess
            RTMP_REFUSED.labels(reason="key_check_failed").inc()
            log.warning("RTMP publisher from %s refused: Redis unavailable (%s)", session.peer, exc)
        except (OSError, asyncio.IncompleteReadError) as exc:
            log.info("RTMP connection from %s ended: %s", session.peer, exc)
        finally:
            self.active -= 1
            await session.close()


class _Session:
    """One publisher: handshake and key check within the deadline, then relay and ingest."""

    def __init__(
        self, listener: RtmpListener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.l = listener
        self.cfg = listener.settings.ingest
        self.reader, self.writer = reader, writer
        self.peer = str(writer.get_extra_info("peername"))
        loop = asyncio.get_running_loop()
        self.deadline = loop.time() + self.cfg.rtmp_handshake_timeout_s
        self.up: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Future[Any]] = []

    def _left(self) -> float:
        return max(0.0, self.deadline - asyncio.get_running_loop().time())

    async def _read(self, n: int | None = None) -> bytes:
        try:
            async with asyncio.timeout(self._left()):
                return await (self.reader.readexactly(n) if n else self.reader.read(65536))
        except TimeoutError:
            raise Refused("handshake_timeout") from None

    async def run(self) -> None:
        first = await self._read(_C0C1)
        if first[0] != 3:
            raise Refused("not_rtmp")
        port = free_port()  # the loopback hop to our own accept thread
        accepted = self._accept_in_thread(port)
        self.tasks.append(accepted)
        up_r, self.up = await self._connect(port)
        self.up.write(first)
        self.tasks.append(asyncio.ensure_future(_copy(up_r, self.writer)))
        self.up.write(await self._read(_C2))
        key, held = await self._until_publish()
        entry = await streamkeys.lookup(self.l.settings, self.l.client, key)
        if entry is None:
            raise Refused("bad_key")  # publish never reached FFmpeg: nothing was decoded
        self.up.write(held)
        self.tasks.append(asyncio.ensure_future(self._relay()))
        try:
            async with asyncio.timeout(self._left() + 5):
                container = await accepted
        except (TimeoutError, av.error.FFmpegError, OSError) as exc:
            log.warning("RTMP publisher of stream %s did not start: %s", entry["stream_id"], exc)
            return
        await self._ingest(container, entry)

    async def _until_publish(self) -> tuple[str, bytes]:
        """Relay the publisher's bytes up to its publish command; (stream key, held bytes)."""
        assert self.up is not None
        chunks = ChunkReader()
        while True:
            data = await self._read()
            if not data:
                raise Refused("closed_before_publish")
            try:
                messages = chunks.feed(data)
                for mtype, payload in messages:
                    cmd = command(mtype, payload) or [None]
                    if cmd[0] == "connect":
                        props = cmd[2] if len(cmd) > 2 and isinstance(cmd[2], dict) else {}
                        if str(props.get("app", "")).strip("/") != "live":
                            raise Refused("bad_app")
                    elif cmd[0] == "publish" and len(cmd) > 3 and isinstance(cmd[3], str):
                        return cmd[3].split("?", 1)[0], data
            except RtmpProtocolError:
                raise Refused("not_rtmp") from None
            self.up.write(data)

    async def _connect(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to the FFmpeg listener as soon as it listens."""
        while True:
            try:
                return await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                if self._left() <= 0:
                    raise Refused("handshake_timeout") from None
                await asyncio.sleep(0.02)

    def _accept_in_thread(self, port: int) -> asyncio.Future[av.container.InputContainer]:
        """FFmpeg's listener in a daemon thread: a blocked accept must not hold up exit."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[av.container.InputContainer] = loop.create_future()
        timeout = (self.cfg.rtmp_handshake_timeout_s + 5, self.cfg.read_timeout_s)

        def work() -> None:
            try:
                result: Any = av.open(
                    f"rtmp://127.0.0.1:{port}/live/_", options={"listen": "1"}, timeout=timeout
                )
                ok = True
            except BaseException as exc:  # handed to the awaiting task
                result, ok = exc, False

            def hand_over() -> None:
                if fut.done():
                    if ok:
                        result.close()
                elif ok:
                    fut.set_result(result)
                else:
                    fut.set_exception(result)

            loop.call_soon_threadsafe(hand_over)

        threading.Thread(target=work, name=f"rtmp-{port}", daemon=True).start()
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        return fut

    async def _relay(self) -> None:
        """Publisher -> FFmpeg after the key check; silence past the idle timeout ends it."""
        assert self.up is not None
        try:
            while True:
                try:
                    async with asyncio.timeout(self.cfg.rtmp_idle_timeout_s):
                        data = await self.reader.read(65536)
                except TimeoutError:
                    RTMP_REFUSED.labels(reason="idle_timeout").inc()
                    return
                if not data:
                    return
                self.up.write(data)
                await self.up.drain()
        finally:
            self.up.close()

    async def _ingest(self, container: av.container.InputContainer, entry: dict[str, Any]) -> None:
        meta = StreamMeta(entry["stream_id"], entry["account_id"], entry.get("tenant", "default"))
        src = VideoSource(
            f"rtmp://listener/{meta.stream_id}", container=container, end_on_read_error=True,
            threads=self.l.settings.ingest.decode_threads,
            skip_nonref=self.l.settings.ingest.decode_skip_nonref,
            batch_s=self.l.settings.ingest.decode_batch_s,
            sample_fps=max(self.l.settings.ingest.default_fps, self.l.settings.ingest.hot_fps),
        )  # fmt: skip
        ing = StreamIngester(
            self.l.settings, src.source, meta, producer=self.l.producer, opened=src
        )
        try:
            summary = await ing.run()
            log.info("RTMP stream %s ended: %s", meta.stream_id, summary)
        except SourceError as exc:  # already dead-lettered by the runner
            log.error("RTMP stream %s failed: %s", meta.stream_id, exc)
        except IngestError as exc:
            await deadletter.send(
                self.l.producer,
                self.l.settings,
                deadletter.build("ingest", "rtmp_failed", str(exc)),
            )
        finally:
            ing.status.forget()  # a publisher that left keeps no state series

    async def close(self) -> None:
        await cancel_and_wait(self.tasks, what="RTMP relay")
        for w in (self.up, self.writer):
            if w is not None:
                w.close()


async def _copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
