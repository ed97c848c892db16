"""Pure units of delivery: the breaker and Retry-After parsing."""

from __future__ import annotations

import email.utils
import time

from alerts.delivery import Breaker, retry_after_s


def test_breaker_opens_after_consecutive_failures_and_closes_on_success() -> None:
    b = Breaker("pd", failures=3, reset_s=10)
    b.failure()
    b.failure()
    assert b.wait_s() == 0
    b.failure()
    assert 9 < b.wait_s() <= 10
    b.success()
    assert b.wait_s() == 0 and b.failures == 0


def test_retry_after_seconds_date_and_cap() -> None:
    assert retry_after_s("3", cap=60) == 3
    assert retry_after_s("600", cap=60) == 60
    assert retry_after_s(None, cap=60) is None
    assert retry_after_s("soon-ish", cap=60) is None
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    assert 15 < (retry_after_s(when, cap=60) or 0) <= 20
