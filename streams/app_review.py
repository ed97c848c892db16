"""Worker agents for review outcomes (kept apart from the scores path in streams/app.py).

reviews (key tenant/stream_id, co-partitioned with scores, so the stream-state table is
local) -> the clearing ``allow`` decision on decisions, and the review re-keyed by
tenant/account_id (``framewatch.scope``) into an internal topic whose agent removes the strike
from the ``account-ledger`` table.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from faust.types import TableT, TopicT
from prometheus_client import Counter

from framewatch import metrics, records, scope
from framewatch.errors import RecordDecodeError
from framewatch.failures import Failures
from framewatch.metrics import stage_registry
from framewatch.records import AccountForget, ReviewOutcome
from framewatch.settings import Settings
from streams import guard
from streams.evidence_pin import Pinner
from streams.processor import Out, Processor, ReviewProcessor
from streams.review import redacted

_REG = stage_registry("streams")  # this stage's /metrics only (core metrics join there)

log = logging.getLogger(__name__)
STAGE = "streams"

REVIEW_OUTCOMES = Counter(
    "framewatch_review_outcomes_total",
    "reviewer verdicts on decisions (precision = upheld / (upheld + overturned))",
    ["category", "outcome"],
    registry=_REG,
)
Send = Callable[[Out], Awaitable[Any]]
MarkHot = Callable[[str, bool], Awaitable[None]]


def add_review_agents(
    app: faust.App,
    settings: Settings,
    *,
    state: TableT,
    ledgers: TableT,
    proc: Processor,
    send: Send,
    targets: dict[str, TopicT],
    mark_hot: MarkHot,
    failures: Failures,
    order: guard.Contiguous,
    pinner: Pinner,
) -> None:
    """Add the review agents; their re-keyed topic joins ``targets`` so the worker's one
    ``send`` (metrics, send-error guard) routes review outputs too."""
    t = settings.topics
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    reviews = app.topic(t.name("reviews"), partitions=t.partitions, **raw)
    by_account = app.topic(
        t.internal("reviews_by_account"),
        partitions=t.account_partitions,
        internal=True,
        **raw,
    )
    targets["reviews_by_account"] = by_account
    rp = ReviewProcessor(proc)

    async def on_review(rv: ReviewOutcome) -> None:
        skey = scope.stream(rv)
        res = rp.on_review(state.get(skey), rv)
        state[skey] = res.state
        for out in res.outputs:
            await send(out)
        if res.cleared:
            await mark_hot(skey, False)
        if rv.outcome == "escalated" and not res.duplicate:
            held = pinner.hold(rv)  # the reviewed decision's evidence: legal hold, audited
            if held is not None:
                await send(held)
        if not res.duplicate:
            REVIEW_OUTCOMES.labels(category=res.category or "unknown", outcome=rv.outcome).inc()
        log.info(
            "review %s of decision %s (tenant %s): %s%s%s",
            rv.review_id,
            rv.decision_id,
            rv.tenant,
            rv.outcome,
            " (stream cleared)" if res.cleared else "",
            " (seen before)" if res.duplicate else "",
        )

    async def on_ledger(rv: ReviewOutcome | AccountForget) -> None:
        akey = scope.account(rv)
        if isinstance(rv, AccountForget):
            if akey in ledgers:
                del ledgers[akey]  # a tombstone on the ledger's compacted changelog
            await send(Out("audit_in", akey, redacted(rv)))
            log.info("forgot the ledger of an account of tenant %s (%s)", rv.tenant, rv.forget_id)
            return
        led, outs = rp.on_ledger(ledgers.get(akey), rv)
        ledgers[akey] = led
        for out in outs:
            await send(out)

    async def on_reviews_record(rec: ReviewOutcome | AccountForget) -> None:
        if isinstance(rec, AccountForget):  # the ledger is keyed by account: hand it over
            await send(Out("reviews_by_account", scope.account(rec), rec))
        else:
            await on_review(rec)

    @app.agent(reviews)
    async def resolve(stream: faust.StreamT) -> None:
        async for event in guard.in_order(app, settings, stream, order):
            metrics.RECORDS_IN.labels(stage=STAGE, topic="reviews").inc()
            await failures.handle(event.message, _review_or_forget, on_reviews_record)

    @app.agent(by_account)
    async def unstrike(stream: faust.StreamT) -> None:
        async for event in guard.in_order(app, settings, stream, order):
            await failures.handle(event.message, _review_or_forget, on_ledger)


def _review_or_forget(value: bytes | None) -> ReviewOutcome | AccountForget:
    """The reviews topic carries verdicts and erasure requests."""
    rec = records.decode(value)
    if not isinstance(rec, ReviewOutcome | AccountForget):
        raise RecordDecodeError(
            "unknown_type", f"expected a review or forget record, got a {rec.TYPE} record"
        )
    return rec
