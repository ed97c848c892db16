"""Reading an RTSP server's byte stream (over TCP) to stop redirects before FFmpeg sees them.

The stream is a sequence of RTSP messages (start line, headers, optional body of
``Content-Length`` bytes) and, after PLAY, interleaved binary frames (``$``, channel, 16-bit
length, data). A response with a 3xx status would make FFmpeg open a new connection of its own
to the ``Location``: :class:`RtspWatch` raises :class:`RtspRedirectError` instead.
"""

from __future__ import annotations

MAX_HEAD = 64 * 1024  # an RTSP head larger than this is not RTSP: stop watching, refuse


class RtspRedirectError(Exception):
    """The server answered with a redirect (or with something that is not RTSP)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class RtspWatch:
    """Feed it the server's bytes in order; it raises on a redirect."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._skip = 0  # body or interleaved bytes still to pass

    def feed(self, data: bytes) -> None:
        self._buf += data
        while self._buf:
            if self._skip:
                n = min(self._skip, len(self._buf))
                del self._buf[:n]
                self._skip -= n
                continue
            if self._buf[0] == 0x24:  # '$': interleaved frame
                if len(self._buf) < 4:
                    return
                self._skip = 4 + int.from_bytes(self._buf[2:4], "big")
                continue
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEAD:
                    raise RtspRedirectError("(an oversized or non-RTSP answer)")
                return
            head = bytes(self._buf[:end]).decode("latin-1").split("\r\n")
            del self._buf[: end + 4]
            fields = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
            start = head[0].split(" ")
            if start[0].startswith("RTSP/") and len(start) > 1 and start[1][:1] == "3":
                raise RtspRedirectError(fields.get("location", "(no Location)")[:200])
            try:
                self._skip = max(0, int(fields.get("content-length", "0")))
            except ValueError:
                raise RtspRedirectError("(a malformed RTSP answer)") from None
