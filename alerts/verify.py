"""Signing of generic webhooks, and the verifier helper receivers copy or import.

The signature is HMAC-SHA256 with the sink's secret over ``f"{timestamp}.".encode() + body``,
sent as ``X-Framewatch-Signature: v1=<hex>`` with ``X-Framewatch-Timestamp: <unix seconds>``.
Receivers must check both: the timestamp bounds replays, the signature proves origin.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Framewatch-Timestamp"
SIGNATURE_HEADER = "X-Framewatch-Signature"
MAX_AGE_S = 300.0


class SignatureError(Exception):
    """The request is not authentic or is too old: answer 401 and drop it."""


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers that sign ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: f"v1={mac}"}


def verify(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    max_age_s: float = MAX_AGE_S,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless ``body`` was signed with ``secret`` within ``max_age_s``."""
    lower = {k.lower(): v for k, v in headers.items()}
    ts = lower.get(TIMESTAMP_HEADER.lower())
    sig = lower.get(SIGNATURE_HEADER.lower())
    if not ts or not sig:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    try:
        ts_i = int(ts)
    except ValueError:
        raise SignatureError(f"{TIMESTAMP_HEADER} is not an integer: {ts!r}") from None
    age = (time.time() if now is None else now) - ts_i
    if age > max_age_s or age < -max_age_s:
        raise SignatureError(f"timestamp is {age:.0f}s off (limit {max_age_s:.0f}s): replay?")
    expected = sign(secret, body, ts_i)[SIGNATURE_HEADER]
    if not hmac.compare_digest(expected.encode(), sig.encode()):
        raise SignatureError("signature does not match the body and secret")
