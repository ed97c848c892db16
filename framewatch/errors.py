"""The exception types framewatch raises; every message tells the user what to do next."""

from __future__ import annotations


class FramewatchError(Exception):
    """Base of every error framewatch raises on purpose."""


class SettingsError(FramewatchError):
    """A setting is missing or invalid; the message names the setting (env var or file key)."""


RECORD_DECODE_REASONS = ("malformed", "unknown_type", "unsupported_version", "invalid")
# a record that decoded but whose handling raised (framewatch/failures.py)
PROCESSING_FAILED = "processing_failed"


class RecordDecodeError(FramewatchError):
    """Bytes on a topic are not a record this consumer can read: dead-letter them.

    `reason` is a short machine-friendly code (``malformed``, ``unknown_type``,
    ``unsupported_version``, ``invalid``) used as a metric label and in the dead-letter record.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class TaxonomyError(FramewatchError):
    """A category path is not in the taxonomy, or a taxonomy file is malformed."""


class LocalStackError(FramewatchError):
    """The local Kafka or Redis could not be fetched, started or reached."""
