"""The demo's reviewer console: a review waiting for a person at the end of `framewatch demo`.

The demo puts one sample video (the padded one) into a *review* hash bank: its stream crosses
the review threshold (a hash match whose role is review) and waits in the console's queue. The
console runs as one more process of the demo, through its own command, with a reviewer made for
the run; the demo logs in as that reviewer and reads the queue through ``GET /api/queue``, as a
script would, so "a review is waiting" is checked, not assumed.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from typing import Any

import aiohttp

from framewatch.local import free_port, port_open

REVIEW_BANK = "demo-review"
REVIEW_CATEGORY = "known_bad.review_bank"
REVIEWER = "demo-reviewer"
TENANT = "demo"


def pick_port(preferred: int) -> int:
    """The console's usual port when it is free (the URL people expect), else any free one."""
    return preferred if preferred and not port_open(preferred) else free_port()


async def start(pipe: Any, port: int) -> dict[str, Any]:
    """Make the run's reviewer and start the console; returns its url, user and password."""
    password = secrets.token_urlsafe(12)
    await pipe.run_cmd("console", "user", "add", REVIEWER, "--role", "reviewer",
                       "--tenant", TENANT, "--password-stdin", stdin=password + "\n")  # fmt: skip
    await pipe.start("console", "console", "serve",
                     extra_env={"FRAMEWATCH_CONSOLE__PORT": str(port)})  # fmt: skip
    return {"url": f"http://127.0.0.1:{port}/", "user": REVIEWER, "password": password}


async def pending_reviews(console: dict[str, Any], timeout: float = 90.0) -> list[dict[str, Any]]:
    """Log in as the run's reviewer and read the queue until it has an item (or time is up)."""
    base = console["url"].rstrip("/")
    deadline = time.monotonic() + timeout
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for an IP-address host
    async with aiohttp.ClientSession(cookie_jar=jar, timeout=aiohttp.ClientTimeout(10)) as http:
        while time.monotonic() < deadline:  # up, and caught up with its topics
            try:
                async with http.get(base + "/healthz") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
        async with http.get(base + "/login") as r:
            m = re.search(r'name="csrf" value="([^"]+)"', await r.text())
        if m is None:
            return []
        form = {"csrf": m.group(1), "name": console["user"], "password": console["password"],
                "next": "/queue"}  # fmt: skip
        async with http.post(base + "/login", data=form) as r:
            if r.status != 200:
                return []
        while True:
            async with http.get(base + "/api/queue") as r:
                items: list[dict[str, Any]] = (await r.json())["items"] if r.status == 200 else []
            if items or time.monotonic() > deadline:
                return items
            await asyncio.sleep(1.0)
