"""A client that sends its request body one byte at a time (the slow-upload attack)."""

from __future__ import annotations

import asyncio
import time


async def trickle(port: int, head: str, total: int) -> bytes:
    """Send ``head`` announcing ``total`` body bytes, then one byte every 0.2 s until the
    server hangs up (or 30 s); everything the server sent back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = bytearray()

    async def read_all() -> None:
        """Until EOF (the server closed). Our bytes still arriving at a closed socket make its
        kernel answer RST: that ends the read too, after the answer was read."""
        try:
            while chunk := await reader.read(65536):
                answer.extend(chunk)
        except ConnectionResetError:
            pass

    got = asyncio.create_task(read_all())
    writer.write(head.encode() + f"Content-Length: {total}\r\n\r\n".encode())
    end = time.monotonic() + 30
    try:
        for _ in range(total):
            if got.done() or time.monotonic() > end:
                break
            try:
                writer.write(b"{")
                await writer.drain()
            except OSError:
                break  # the server hung up mid-body
            await asyncio.sleep(0.2)
        assert got.done() or time.monotonic() <= end, "the server never cut the slow upload"
        await asyncio.wait_for(got, 5)
        return bytes(answer)
    finally:
        got.cancel()
        writer.close()
