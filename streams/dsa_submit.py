"""`framewatch dsa submit`: statements of reasons from the topics to the DSA Transparency Database.

Reads decisions and enforcement steps (consumer group ``dsa.group_id`` + tenant), takes the
statement each record of ``dsa.tenant`` carries (each tenant is its own platform in the database,
with its own token: one submitter per tenant) and submits them with the database's batch endpoint, ``POST /api/v1/statements``
with ``{"statements": [...]}`` (1-100 a call, Bearer token). Offsets are committed only after a
batch is settled, so a stopped or crashed run resumes where it left off.

Settled means, per the database's answers (``StatementMultipleAPIController``):
- 201: all created;
- 422 with ``errors.existing_puids``: those puids are already in the database (a resubmission
  after a lost answer): success, and the rest of the batch is sent again without them;
- 422 with ``errors.statement_N``: the database refused statement N (none of the batch was
  created): it goes to the dead-letter topic with the database's reasons, the rest is resent;
- 429, 5xx or no answer: the same batch is retried with backoff (Retry-After honoured);
- 401/403 or any other answer: the run stops without committing and says what to fix.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
from aiokafka.structs import ConsumerRecord
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from framewatch import deadletter, kafkaio, metrics, records
from framewatch.errors import FramewatchError, RecordDecodeError
from framewatch.settings import Settings
from framewatch.settings.dsa import DsaSettings

log = logging.getLogger(__name__)
STAGE = "dsa"
PATH = "/api/v1/statements"


class SubmitError(FramewatchError):
    """The run cannot go on (token refused, wrong URL, the database down for too long); nothing
    after the last settled batch was committed, so running the command again resumes there."""


class _Retry(Exception):
    """An answer worth retrying: 429, 5xx, or none at all."""

    def __init__(self, why: str, retry_after: float | None = None) -> None:
        super().__init__(why)
        self.retry_after = retry_after


@dataclass
class Summary:
    """What a run did; `--json` prints it."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0  # records that carry no statement (reviews, allows without a block)
    other_tenants: int = 0  # statements of other tenants (their own submitter sends them)
    batches: int = 0  # batches of records settled (and committed)
    calls: int = 0  # API calls answered 201 or 422
    retries: int = 0
    records: int = 0

    def line(self) -> str:
        return (
            f"{self.accepted} accepted, {self.duplicates} already there, {self.rejected} refused "
            f"(dead-lettered), {self.skipped} records without a new statement, {self.other_tenants} "
            f"of other tenants, {self.batches} batches, "
            f"{self.calls} calls, "
            f"{self.retries} retries"
        )

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class _Item:
    puid: str
    body: dict[str, Any]
    message: ConsumerRecord  # type: ignore[type-arg]


@dataclass
class _Settled:
    accepted: list[_Item] = field(default_factory=list)
    duplicates: list[_Item] = field(default_factory=list)
    rejected: list[tuple[_Item, str]] = field(default_factory=list)


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unreadable: fall back to exponential backoff
    return max(0.0, when.timestamp() - time.time())


class Client:
    """One batch call to the database, retried on 429/5xx/network errors with tenacity."""

    def __init__(self, cfg: DsaSettings, session: aiohttp.ClientSession, summary: Summary) -> None:
        if cfg.token is None:
            raise SubmitError(
                "no API token: set FRAMEWATCH_DSA__TOKEN (or dsa.token in the config file) to "
                "the token generated in your Transparency Database profile"
            )
        self.cfg, self.session, self.summary = cfg, session, summary
        self.url = cfg.base_url + PATH
        self.headers = {
            "Authorization": f"Bearer {cfg.token.get_secret_value()}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retry) and exc.retry_after is not None:
            return min(exc.retry_after, self.cfg.retry_max_wait_s)
        return wait_exponential(multiplier=0.5, max=self.cfg.retry_max_wait_s)(state)

    def _count(self, state: RetryCallState) -> None:
        self.summary.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.warning("DSA database: %s; retrying (try %d)", exc, state.attempt_number + 1)

    async def post(self, statements: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) of a settled answer: 201 or 422."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.cfg.retry_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Retry),
            before_sleep=self._count,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._once(statements)
        except _Retry as exc:
            raise SubmitError(
                f"the DSA Transparency Database kept answering {exc} after "
                f"{self.cfg.retry_attempts} tries; nothing after the last settled batch was "
                "committed: run `framewatch dsa submit` again later"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(self, statements: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        timeout = aiohttp.ClientTimeout(total=self.cfg.timeout_s)
        try:
            async with self.session.post(
                self.url, json={"statements": statements}, headers=self.headers, timeout=timeout
            ) as resp:
                text = await resp.text()
                if resp.status == 429 or resp.status >= 500:
                    raise _Retry(f"{resp.status}", _retry_after(resp.headers.get("Retry-After")))
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Retry(f"no answer ({type(exc).__name__}: {exc})") from None
        if status in (401, 403):
            raise SubmitError(
                f"the DSA Transparency Database refused the token ({status}): generate a new one "
                "in your profile there and set FRAMEWATCH_DSA__TOKEN; nothing after the last settled "
                "batch was committed"
            )
        try:
            body = json.loads(text) if text else {}
        except ValueError:
            body = {}
        if status not in (201, 422) or not isinstance(body, dict):
            raise SubmitError(
                f"unexpected answer {status} from {self.url}: {text[:300]!r}; check "
                "FRAMEWATCH_DSA__BASE_URL (production: https://transparency.dsa.ec.europa.eu)"
            )
        return status, body


def _clip(text: str, limit: int = 4000) -> str:
    """The database's reasons, bounded so the dead-letter record always fits."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def settle(client: Client, items: list[_Item]) -> _Settled:
    """Submit items until each is created, known as a duplicate, or refused with a reason."""
    out = _Settled()
    pending = list(items)
    while pending:
        status, body = await client.post([i.body for i in pending])
        client.summary.calls += 1
        if status == 201:
            out.accepted += pending
            break
        errors = body.get("errors") if isinstance(body.get("errors"), dict) else {}
        existing = set(errors.get("existing_puids") or [])
        refused = {
            int(k.removeprefix("statement_")): v
            for k, v in errors.items()
            if k.startswith("statement_") and k.removeprefix("statement_").isdigit()
        }
        refused = {n: v for n, v in refused.items() if n < len(pending)}
        if existing & {i.puid for i in pending}:
            out.duplicates += [i for i in pending if i.puid in existing]
            pending = [i for i in pending if i.puid not in existing]
        elif refused:
            out.rejected += [
                (i, _clip(json.dumps(refused[n], sort_keys=True)))
                for n, i in enumerate(pending)
                if n in refused
            ]
            pending = [i for n, i in enumerate(pending) if n not in refused]
        else:  # refused as a whole, no statement named: each gets the database's whole answer
            why = _clip(json.dumps(body, sort_keys=True))
            out.rejected += [(i, why) for i in pending]
            break
    return out


def _items(
    messages: list[ConsumerRecord],  # type: ignore[type-arg]
    tenant: str,
    dead: list[records.DeadLetter],
    summary: Summary,
) -> list[_Item]:
    """This tenant's statements in these records, once per puid; undecodable records are
    dead-lettered, the rest counted as skipped or another tenant's."""
    items: dict[str, _Item] = {}
    for m in messages:
        try:
            rec = records.decode(m.value)
        except RecordDecodeError as exc:
            dead.append(deadletter.build(STAGE, exc.reason, str(exc), message=m))
            continue
        stm = getattr(rec, "statement", None)
        if stm is None or stm.puid in items:
            summary.skipped += 1
        elif getattr(rec, "tenant", "default") != tenant:
            summary.other_tenants += 1
        else:
            items[stm.puid] = _Item(stm.puid, stm.to_api(), m)
    return list(items.values())


async def run(
    settings: Settings,
    *,
    follow: bool = False,
    max_batches: int | None = None,
    say: Callable[[str], None] = lambda _m: None,
) -> Summary:
    """Submit the statements on the decisions and enforcement topics.

    Without follow, stops once it has caught up with the end of the topics as they were when it
    joined; max_batches stops after that many settled batches (a careful first rollout)."""
    cfg = settings.dsa
    summary = Summary()
    metrics.init_series(STAGE, dead_letter_reasons=("dsa_rejected",))
    topics = [settings.topics.name("decisions"), settings.topics.name("enforcement")]
    async with aiohttp.ClientSession() as session:
        client = Client(cfg, session, summary)  # refuses to start without a token
        consumer = kafkaio.consumer(
            settings,
            *topics,
            group_id=f"{cfg.group_id}.{cfg.tenant}",
            max_poll_records=cfg.batch_size,
        )
        producer = kafkaio.producer(settings)
        try:
            await consumer.start()
            await producer.start()
            while max_batches is None or summary.batches < max_batches:
                got = await consumer.getmany(timeout_ms=1000, max_records=cfg.batch_size)
                messages = [m for batch in got.values() for m in batch]
                if not messages:
                    if not follow and await _caught_up(consumer):
                        break
                    continue
                await _submit(client, settings, producer, messages, summary)
                await consumer.commit()
                summary.batches += 1
                say(f"dsa submit: {len(messages)} records settled; so far {summary.line()}")
        finally:
            await consumer.stop()
            await producer.stop()
    return summary


async def _caught_up(consumer: Any) -> bool:
    """Every assigned partition read to its end (False while the group is still joining)."""
    parts = list(consumer.assignment())
    if not parts:
        return False
    ends = await consumer.end_offsets(parts)
    for tp in parts:
        if await consumer.position(tp) < ends[tp]:
            return False
    return True


async def _submit(
    client: Client,
    settings: Settings,
    producer: Any,
    messages: list[ConsumerRecord],  # type: ignore[type-arg]
    summary: Summary,
) -> None:
    summary.records += len(messages)
    dead: list[records.DeadLetter] = []
    items = _items(messages, settings.dsa.tenant, dead, summary)
    if items:
        done = await settle(client, items)
        summary.accepted += len(done.accepted)
        summary.duplicates += len(done.duplicates)
        summary.rejected += len(done.rejected)
        for item, why in done.rejected:
            error = f"DSA Transparency Database refused statement {item.puid}: {why}"
            dead.append(deadletter.build(STAGE, "dsa_rejected", error, message=item.message))
    for d in dead:
        await deadletter.send(producer, settings, d)


def main(settings: Settings, *, follow: bool, max_batches: int | None, as_json: bool) -> int:
    """The command: progress on stderr, the summary on stdout (JSON with --json)."""

    def say(m: str) -> None:
        print(m, file=sys.stderr, flush=True)

    try:
        summary = asyncio.run(run(settings, follow=follow, max_batches=max_batches, say=say))
    except KeyboardInterrupt:
        return 130
    print(json.dumps(summary.as_dict()) if as_json else f"dsa submit: {summary.line()}")
    return 0
