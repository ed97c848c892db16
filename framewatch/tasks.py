"""Ending asyncio tasks for certain, on the Python this project runs (3.11).

On 3.11 ``asyncio.wait_for`` drops a cancel that reaches it as the call it waits on completes
(CPython issue 86296; 3.12 rebuilt ``wait_for`` on ``asyncio.timeout``). redis-py wraps every
socket write in it when a socket timeout is set, so a task cancelled during a Redis command
runs on as if it had never been cancelled: here 28 of 300 single GETs, and 38-45 of 60 loops
of GETs (tests/unit/test_tasks.py). A
``task.cancel()`` followed by ``await task`` then waits for as long as the task loops, which
for a background loop is forever. So every stage ends its tasks through :func:`cancel_and_wait`
and waits with ``asyncio.timeout`` rather than ``asyncio.wait_for`` in its own code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

# a task still running is cancelled again this often. A loop of Redis commands swallows most
# cancels (38-45 of 60 in tests/unit/test_tasks.py), so a retry must come soon and often; the cost
# is that a task's own clean-up after its cancel must not await longer than this (the tasks
# ended here close sockets and leave, they do not flush)
RECANCEL_S = 0.05


async def cancel_and_wait(
    tasks: Iterable[asyncio.Future[Any] | None], *, timeout_s: float = 10.0, what: str = "task"
) -> set[asyncio.Future[Any]]:
    """Cancel ``tasks`` and wait until every one has ended, cancelling again every RECANCEL_S
    one that is still running (a cancel a library swallowed). Their results and exceptions
    are consumed, so none is reported as never retrieved. Returns the ones still running after
    ``timeout_s`` (a task that keeps catching its cancel), logged as a warning, never awaited
    forever. A cancel of the caller itself goes through: this only waits with
    ``asyncio.wait``, which never swallows one."""
    all_tasks = {t for t in tasks if t is not None}
    pending = {t for t in all_tasks if not t.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while pending:
        for t in pending:
            t.cancel()
        left = deadline - loop.time()
        if left <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(RECANCEL_S, left))
    for t in all_tasks - pending:
        if not t.cancelled():
            t.exception()  # retrieved: an error it ended with was already handled or logged
    if pending:
        log.warning("%d %s(s) still running %g s after being cancelled", len(pending), what,
                    timeout_s)  # fmt: skip
    return pending
