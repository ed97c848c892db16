"""A source's state, as an explicit state machine with its allowed transitions in one place.

connecting -> live (frames flow) -> stalled (connected, but no frame for ``ingest.stall_s``)
or reconnecting (the connection dropped; backoff) -> live again; ended (a file's end, a stop,
a live URL that ended with ``reconnect_on_end=false``) and failed (a dead-lettered error) are
final. ``framewatch sources list --json`` and ``framewatch_ingest_source_state`` show it.
"""

from __future__ import annotations

import contextlib
import enum
import threading
import time

from ingest.errors import IngestError
from ingest.metrics import SOURCE_STATE, STATES, stream_labels


class SourceState(enum.StrEnum):
    CONNECTING = "connecting"
    LIVE = "live"
    STALLED = "stalled"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    FAILED = "failed"


S = SourceState
assert tuple(s.value for s in SourceState) == STATES  # metrics.STATES names them for eviction
TRANSITIONS: dict[SourceState, frozenset[SourceState]] = {
    S.CONNECTING: frozenset({S.LIVE, S.RECONNECTING, S.ENDED, S.FAILED}),
    S.LIVE: frozenset({S.STALLED, S.RECONNECTING, S.ENDED, S.FAILED}),
    S.STALLED: frozenset({S.LIVE, S.RECONNECTING, S.ENDED, S.FAILED}),
    S.RECONNECTING: frozenset({S.LIVE, S.STALLED, S.ENDED, S.FAILED}),
    S.ENDED: frozenset(),
    S.FAILED: frozenset(),
}


class TransitionError(IngestError):
    """A state change the machine does not allow: a bug in the caller, reported as such."""


class SourceStatus:
    """The state of one source; thread-safe (the decode thread and the event loop both move it)."""

    def __init__(self, stream_id: str, tenant: str = "default") -> None:
        self.stream_id, self.tenant = stream_id, tenant
        self.state = SourceState.CONNECTING
        self.since = time.time()
        self._lock = threading.Lock()
        self._show()

    def to(self, new: SourceState) -> bool:
        """Move to `new`; staying put is a no-op (False). Raises TransitionError if not allowed."""
        with self._lock:
            if new is self.state:
                return False
            if new not in TRANSITIONS[self.state]:
                raise TransitionError(
                    f"source {self.stream_id}: {self.state.value} -> {new.value} is not an "
                    "allowed transition"
                )
            old, self.state, self.since = self.state, new, time.time()
        SOURCE_STATE.labels(*stream_labels(self.tenant, self.stream_id), old.value).set(0)
        self._show()
        return True

    @property
    def final(self) -> bool:
        return not TRANSITIONS[self.state]

    def _show(self) -> None:
        SOURCE_STATE.labels(*stream_labels(self.tenant, self.stream_id), self.state.value).set(1)

    def forget(self) -> None:
        """Drop this source's state series (a publisher that left keeps no state); its last
        frame time stays, for the 'stream silent' alert, until the stream is unregistered."""
        labels = stream_labels(self.tenant, self.stream_id)
        for s in STATES:
            with contextlib.suppress(KeyError):
                SOURCE_STATE.remove(*labels, s)
