"""HTTP delivery to one sink: retries with backoff + jitter, Retry-After, a breaker per sink."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp
from prometheus_client import Counter, Gauge, Histogram

from alerts.routing import Sink
from framewatch.metrics import stage_registry
from framewatch.redact import mask_url
from framewatch.settings.alerts import AlertsSettings

_REG = stage_registry("alerts")  # this stage's /metrics only (core metrics join there)

log = logging.getLogger(__name__)

DELIVERIES = Counter(
    "framewatch_alert_deliveries_total",
    "delivery outcomes per sink",
    ["sink", "outcome"],
    registry=_REG,
)
RETRIED = Counter(
    "framewatch_alerts_retried_total", "delivery retries", ["sink", "why"], registry=_REG
)
FAILED = Counter(
    "framewatch_alerts_dead_lettered_total", "deliveries given up", ["sink"], registry=_REG
)
LATENCY = Histogram(
    "framewatch_alerts_delivery_seconds",
    "record raised -> accepted by the sink",
    ["sink"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
    registry=_REG,
)
OPEN_INCIDENTS = Gauge(
    "framewatch_alerts_open_incidents", "triggered, not yet resolved", registry=_REG
)
BREAKER_OPEN = Gauge(
    "framewatch_alerts_breaker_open", "1 while a sink's breaker is open", ["sink"], registry=_REG
)


def init_series(sinks: Iterable[str]) -> None:
    """Every sink's delivery series exist at 0 from the start, so that the first failed page
    moves ``increase()`` (FramewatchAlertDeliveryFailing) instead of creating the series at 1."""
    for name in sinks:
        for outcome in ("delivered", "failed"):
            DELIVERIES.labels(sink=name, outcome=outcome)
        FAILED.labels(sink=name)
        BREAKER_OPEN.labels(sink=name).set(0)


@dataclass
class Outcome:
    ok: bool
    attempts: int
    error: str = ""
    status: int | None = None


class Breaker:
    """Consecutive failures open it; after `reset_s` one trial may pass (half-open)."""

    def __init__(self, name: str, failures: int, reset_s: float) -> None:
        self.name, self.limit, self.reset_s = name, failures, reset_s
        self.failures = 0
        self.opened_at: float | None = None

    def wait_s(self) -> float:
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.reset_s - time.monotonic())

    def success(self) -> None:
        self.failures, self.opened_at = 0, None
        BREAKER_OPEN.labels(sink=self.name).set(0)

    def failure(self) -> None:
        self.failures += 1
        if self.failures >= self.limit:
            if self.opened_at is None:
                log.warning("circuit breaker of sink %s open", self.name)
            self.opened_at = time.monotonic()
            BREAKER_OPEN.labels(sink=self.name).set(1)


def retry_after_s(value: str | None, cap: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), capped."""
    if not value:
        return None
    try:
        return min(cap, max(0.0, float(value)))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None  # unreadable: fall back to our own backoff
        return min(cap, max(0.0, when.timestamp() - time.time()))


class Deliverer:
    """Sends bodies to sinks over one shared aiohttp session."""

    def __init__(self, cfg: AlertsSettings) -> None:
        self.cfg = cfg
        self.session: aiohttp.ClientSession | None = None
        self.breakers: dict[str, Breaker] = {}

    async def __aenter__(self) -> Deliverer:
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session:
            await self.session.close()

    def breaker(self, sink: str) -> Breaker:
        if sink not in self.breakers:
            self.breakers[sink] = Breaker(sink, self.cfg.breaker_failures, self.cfg.breaker_reset_s)
        return self.breakers[sink]

    def backoff_s(self, attempt: int) -> float:
        """Full jitter: uniform(0, min(cap, base * 2**attempt))."""
        return random.uniform(0, min(self.cfg.backoff_max_s, self.cfg.backoff_base_s * 2**attempt))

    async def send(self, sink: Sink, body: bytes, headers: dict[str, str]) -> Outcome:
        """Try until accepted, a permanent error (4xx but 429), or the retry budget is spent."""
        assert self.session is not None
        brk = self.breaker(sink.name)
        timeout = aiohttp.ClientTimeout(total=sink.timeout_s or self.cfg.request_timeout_s)
        error, status = "", None
        where = mask_url(sink.url, keep_path=False)  # logged and dead-lettered: never the full URL
        for attempt in range(self.cfg.max_attempts):
            if (w := brk.wait_s()) > 0:
                await asyncio.sleep(w)
            delay: float | None = None
            try:
                async with self.session.post(
                    sink.url, data=body, headers=headers, timeout=timeout
                ) as resp:
                    status = resp.status
                    text = (await resp.text())[:300]
                    if 200 <= status < 300:
                        brk.success()
                        DELIVERIES.labels(sink=sink.name, outcome="delivered").inc()
                        return Outcome(True, attempt + 1, status=status)
                    error = f"HTTP {status} from {where}: {text}"
                    if status == 429:
                        delay = retry_after_s(
                            resp.headers.get("Retry-After"), self.cfg.retry_after_max_s
                        )
                        why = "429"
                    elif status >= 500 or status == 408:
                        why = "5xx"
                    else:
                        brk.success()  # the sink is up; the request itself is wrong
                        DELIVERIES.labels(sink=sink.name, outcome="failed").inc()
                        return Outcome(False, attempt + 1, error + " (not retried)", status)
            except TimeoutError:
                error, why = f"timed out after {timeout.total}s posting to {where}", "timeout"
            except aiohttp.ClientError as exc:
                msg = str(exc).replace(sink.url, where)
                error, why = f"{type(exc).__name__} posting to {where}: {msg}", "connection"
            except (ValueError, TypeError) as exc:  # aiohttp refused to build the request
                DELIVERIES.labels(sink=sink.name, outcome="failed").inc()
                msg = str(exc).replace(sink.url, where)
                return Outcome(False, attempt + 1, f"cannot post to {where}: {msg} (not retried)")
            if why != "429":
                brk.failure()
            if attempt + 1 >= self.cfg.max_attempts:
                break
            RETRIED.labels(sink=sink.name, why=why).inc()
            wait = delay if delay is not None else self.backoff_s(attempt)
            log.info("sink %s: %s; retry %d in %.2fs", sink.name, error, attempt + 1, wait)
            await asyncio.sleep(wait)
        FAILED.labels(sink=sink.name).inc()
        DELIVERIES.labels(sink=sink.name, outcome="failed").inc()
        return Outcome(False, self.cfg.max_attempts, error, status)
