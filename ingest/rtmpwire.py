"""Just enough of the RTMP wire format to read a publisher's commands before FFmpeg decodes.

:class:`ChunkReader` reassembles the client-to-server chunk stream (basic header with 1-3 byte
chunk stream ids, message header types 0-3, extended timestamps, Set Chunk Size) into messages;
:func:`command` decodes an AMF0 (or AMF3-wrapped AMF0) command message. Limits: a message
before publishing is at most ``max_message`` bytes and AMF nesting is shallow, so a hostile
client costs little.
"""

from __future__ import annotations

import struct
from typing import Any

MSG_SET_CHUNK_SIZE = 1
MSG_AMF3_COMMAND = 17
MSG_AMF0_COMMAND = 20
_HEADER = (11, 7, 3, 0)
_MAX_DEPTH = 8


class RtmpProtocolError(ValueError):
    """Bytes that are not the RTMP a publisher sends."""


class ChunkReader:
    """Feed bytes in order; get complete ``(message type, payload)`` pairs back."""

    def __init__(self, max_message: int = 64 * 1024) -> None:
        self.max_message = max_message
        self.chunk_size = 128
        self._buf = bytearray()
        self._streams: dict[int, dict[str, Any]] = {}

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        out: list[tuple[int, bytes]] = []
        while (step := self._chunk()) is not None:
            if step:
                out.append(step)
        return out

    def _chunk(self) -> tuple[int, bytes] | tuple[()] | None:
        b = self._buf
        if not b:
            return None
        fmt, csid, pos = b[0] >> 6, b[0] & 0x3F, 1
        if csid == 0:
            if len(b) < 2:
                return None
            csid, pos = 64 + b[1], 2
        elif csid == 1:
            if len(b) < 3:
                return None
            csid, pos = 64 + b[1] + b[2] * 256, 3
        if len(b) < pos + _HEADER[fmt]:
            return None
        st = self._streams.get(csid)
        if st is None:
            if fmt != 0:
                raise RtmpProtocolError(f"chunk stream {csid} starts without a full header")
            st = {"ts": 0, "len": 0, "type": 0, "ext": False, "data": bytearray()}
        ts, length, mtype = st["ts"], st["len"], st["type"]
        if fmt <= 2:
            ts = int.from_bytes(b[pos : pos + 3], "big")
        if fmt <= 1:
            length, mtype = int.from_bytes(b[pos + 3 : pos + 6], "big"), b[pos + 6]
        pos += _HEADER[fmt]
        ext = ts == 0xFFFFFF if fmt <= 2 else st["ext"]
        if ext:
            pos += 4
        if length > self.max_message:
            raise RtmpProtocolError(f"a {length}-byte message before publishing")
        n = min(self.chunk_size, length - len(st["data"]))
        if len(b) < pos + n:
            return None
        st.update(ts=ts, len=length, type=mtype, ext=ext)
        st["data"] += b[pos : pos + n]
        self._streams[csid] = st
        del b[: pos + n]
        if len(st["data"]) < length:
            return ()
        payload = bytes(st["data"])
        st["data"] = bytearray()
        if mtype == MSG_SET_CHUNK_SIZE and len(payload) >= 4:
            self.chunk_size = max(1, int.from_bytes(payload[:4], "big") & 0x7FFFFFFF)
        return mtype, payload


def command(mtype: int, payload: bytes) -> list[Any] | None:
    """The AMF0 values of a command message ([name, transaction id, ...]), else None."""
    if mtype == MSG_AMF3_COMMAND:
        payload = payload[1:]
    elif mtype != MSG_AMF0_COMMAND:
        return None
    values, pos = [], 0
    try:
        while pos < len(payload):
            value, pos = _value(payload, pos, 0)
            values.append(value)
    except (IndexError, struct.error, UnicodeDecodeError, RtmpProtocolError) as exc:
        if not values:  # no command name at all
            raise RtmpProtocolError(f"malformed AMF0 command ({exc})") from None
    return values  # the values up to a part this reader does not know


def _value(d: bytes, p: int, depth: int) -> tuple[Any, int]:
    if depth > _MAX_DEPTH:
        raise RtmpProtocolError("AMF0 nested too deep")
    t, p = d[p], p + 1
    if t == 0x00:
        return struct.unpack_from(">d", d, p)[0], p + 8
    if t == 0x01:
        return bool(d[p]), p + 1
    if t == 0x02:
        n = struct.unpack_from(">H", d, p)[0]
        return d[p + 2 : p + 2 + n].decode(), p + 2 + n
    if t == 0x0C:
        n = struct.unpack_from(">I", d, p)[0]
        return d[p + 4 : p + 4 + n].decode(), p + 4 + n
    if t in (0x05, 0x06):
        return None, p
    if t in (0x03, 0x08):
        p += 4 if t == 0x08 else 0
        obj: dict[str, Any] = {}
        while True:
            n = struct.unpack_from(">H", d, p)[0]
            name, p = d[p + 2 : p + 2 + n].decode(), p + 2 + n
            if not name and d[p] == 0x09:
                return obj, p + 1
            obj[name], p = _value(d, p, depth + 1)
    if t == 0x0A:
        n, p = struct.unpack_from(">I", d, p)[0], p + 4
        items = []
        for _ in range(min(n, 1024)):
            item, p = _value(d, p, depth + 1)
            items.append(item)
        return items, p
    if t == 0x0B:
        return None, p + 10
    raise RtmpProtocolError(f"AMF0 type {t:#x} is not expected in a publisher's command")
