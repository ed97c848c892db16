"""Exception types of the ingest stage."""

from __future__ import annotations

from framewatch.errors import FramewatchError


class IngestError(FramewatchError):
    """Base of ingest errors."""


class SourceError(IngestError):
    """A source cannot be read: missing, truncated, corrupt or not a video.

    `reason` is a short code (``open_failed``, ``corrupt``, ``no_video``) for metrics and the
    dead-letter record.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class SourceTimeoutError(SourceError):
    """A source produced no frame within the open/read timeout."""

    def __init__(self, message: str) -> None:
        super().__init__("timeout", message)
