"""The small protocol readers the guards rely on: RTMP chunks/AMF0 and RTSP answers."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.rtmpwire import ChunkReader, RtmpProtocolError, command
from ingest.rtspguard import RtspRedirectError, RtspWatch


def amf_str(s: str) -> bytes:
    return b"\x02" + struct.pack(">H", len(s)) + s.encode()


def amf_num(n: float) -> bytes:
    return b"\x00" + struct.pack(">d", n)


def chunks(csid: int, mtype: int, payload: bytes, size: int = 128) -> bytes:
    """One message as a type-0 chunk followed by type-3 continuation chunks."""
    head = bytes([csid]) + (0).to_bytes(3, "big") + len(payload).to_bytes(3, "big")
    out = head + bytes([mtype]) + (1).to_bytes(4, "little") + payload[:size]
    for i in range(size, len(payload), size):
        out += bytes([0xC0 | csid]) + payload[i : i + size]
    return out


PUBLISH = amf_str("publish") + amf_num(5) + b"\x05" + amf_str("the-key?x=1") + amf_str("live")
CONNECT = (
    amf_str("connect") + amf_num(1) + b"\x03"
    + amf_str("app")[1:] + amf_str("live") + amf_str("tcUrl")[1:] + amf_str("rtmp://h/live")
    + b"\x00\x00\x09"
)  # fmt: skip


def test_a_connect_and_a_publish_split_anywhere_are_read() -> None:
    set_size = chunks(2, 1, (4096).to_bytes(4, "big"))
    stream = chunks(3, 20, CONNECT + b"\x05" * 300, 128) + set_size + chunks(3, 20, PUBLISH, 4096)
    for cut in (1, 7, 64, 1000):
        reader, seen = ChunkReader(), []
        for i in range(0, len(stream), cut):
            seen += [command(t, p) for t, p in reader.feed(stream[i : i + cut])]
        cmds = [c for c in seen if c]
        assert cmds[0][0] == "connect" and cmds[0][2]["app"] == "live"
        assert cmds[1][0] == "publish" and cmds[1][3] == "the-key?x=1"
        assert reader.chunk_size == 4096


def test_an_oversized_message_before_publish_is_refused() -> None:
    with pytest.raises(RtmpProtocolError):
        ChunkReader(max_message=1024).feed(chunks(3, 20, bytes(2000)))


@given(st.binary(max_size=2000))
def test_any_bytes_give_messages_or_a_protocol_error(data: bytes) -> None:
    try:
        for mtype, payload in ChunkReader().feed(data):
            command(mtype, payload)
    except RtmpProtocolError:
        pass


def test_rtsp_redirect_is_caught_after_interleaved_data_and_bodies() -> None:
    w = RtspWatch()
    w.feed(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 5\r\n\r\nv=0\r\n")
    w.feed(b"$\x00\x00\x04RTSP" + b"$\x01\x00\x02ab")  # media that looks like text
    w.feed(b"RTSP/1.0 200 OK\r\nCSeq: 2\r\n\r\n")
    with pytest.raises(RtspRedirectError, match=r"rtsp://10\.0\.0\.1/x"):
        w.feed(b"RTSP/1.0 301 Moved\r\nCSeq: 3\r\nLocation: rtsp://10.0.0.1/x\r\n\r\n")
