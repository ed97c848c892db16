"""The receiver-side verifier: what platforms rely on to trust framewatch webhooks."""

from __future__ import annotations

import time

import pytest

from alerts.verify import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, sign, verify

BODY = b'{"type":"alert","v":1}'


def test_good_signature_verifies() -> None:
    verify("s3cret", BODY, sign("s3cret", BODY))


def test_tampered_body_wrong_secret_and_missing_headers_are_rejected() -> None:
    h = sign("s3cret", BODY)
    with pytest.raises(SignatureError, match="does not match"):
        verify("s3cret", BODY + b" ", h)
    with pytest.raises(SignatureError, match="does not match"):
        verify("other", BODY, h)
    with pytest.raises(SignatureError, match="missing"):
        verify("s3cret", BODY, {TIMESTAMP_HEADER: h[TIMESTAMP_HEADER]})
    forged = {**h, SIGNATURE_HEADER: "v1=" + "0" * 64}
    with pytest.raises(SignatureError):
        verify("s3cret", BODY, forged)


def test_stale_timestamp_is_rejected_as_replay() -> None:
    old = sign("s3cret", BODY, int(time.time()) - 301)
    with pytest.raises(SignatureError, match="replay"):
        verify("s3cret", BODY, old)
    verify("s3cret", BODY, sign("s3cret", BODY, int(time.time()) - 200))
