"""Errors of the scoring stage."""

from __future__ import annotations

from framewatch.errors import FramewatchError


class ModelError(FramewatchError):
    """A model manifest or ONNX file that cannot be used; the message names the field."""


class BankError(FramewatchError):
    """A hash bank operation that cannot be done (bad hash, unknown bank, bad file)."""


class ScoringError(FramewatchError):
    """Base of the check's own refusals (cancelled work, refused input)."""
