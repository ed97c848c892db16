"""The Faust worker: thin agents that decode, call the Processor, and send.

Topics: scores (in, key tenant/stream_id) -> decisions (key tenant/stream_id) + alerts (key
incident_id); decisions are re-keyed by tenant/account_id into an internal topic feeding the
ledger table, which emits enforcement (key tenant/account_id). Every table, Redis and record key
about a stream or account comes from ``framewatch.scope`` (two tenants never share one). Tables
live in memory and recover from their changelog topics, so a restarted worker resumes exactly
where the committed offsets say. Reviews
(streams/app_review.py) and the audit chain (streams/app_audit.py) add their own agents.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from prometheus_client import Counter

from framewatch import metrics, records, redisio, scope, taxonomy
from framewatch.failures import Failures, decoder
from framewatch.kafkaio import faust_broker_config
from framewatch.metrics import stage_registry
from framewatch.records import Decision, Scores
from framewatch.settings import Settings
from streams import guard, lag
from streams.app_audit import add_audit_agents, audit_in_topic, ensure_audit_retention
from streams.app_review import add_review_agents
from streams.evidence_pin import Pinner
from streams.processor import Out, Processor

_REG = stage_registry("streams")  # this stage's /metrics only (core metrics join there)

log = logging.getLogger(__name__)
STAGE = "streams"
DECISIONS = Counter(
    "framewatch_decisions_total",
    "decisions by action and the L1 domain of their top reason ('none' when it has none)",
    ["action", "category"],
    registry=_REG,
)
ACTIONS = ("block", "review", "allow")


def _domain(d: Decision) -> str:
    return d.reasons[0].category.split(".")[0] if d.reasons else "none"


def init_series() -> None:
    """The series rules and the dashboard read exist at 0 from the start."""
    metrics.init_series(STAGE, topics_in=["scores", "reviews"],
                        topics_out=["decisions", "alerts", "enforcement", "audit"])  # fmt: skip
    domains = {c.path.split(".")[0] for c in taxonomy.load()} | {"none"}
    for action in ACTIONS:
        metrics.CAPTURE_TO_DECISION.labels(action=action)
        for domain in domains:
            DECISIONS.labels(action=action, category=domain)


REDIS_ERRORS = Counter(
    "framewatch_streams_redis_errors_total",
    "Redis writes that failed (the 'hot' sampling hint); decisions go on without them",
    registry=_REG,
)


def keep(
    table: Any, key: str, value: Any, persist: bool, writes: guard.DeferredWrites, tp: Any
) -> None:
    """Set a table row; with ``persist`` False only in this worker's memory (or its local
    store), with no changelog write: for a change a restart may forget (state.must_persist).
    A persisted change reaches the changelog at the next commit (``writes``; ``tp``: the
    partition of the record that made it), once however often the row changed."""
    if persist:
        writes.set(table, tp, key, value)
    else:
        table.data[key] = value


def app_config(settings: Settings) -> dict[str, Any]:
    """The ``faust.App`` keyword arguments of the worker (broker, consumer, producer, commit
    and serializer settings): also what benchmarks/streams.py's no-op floor worker runs with,
    so its ceiling is the one this worker's agents work under."""
    t = settings.topics
    return dict(
        **faust_broker_config(settings),
        store=settings.streams.table_store,
        datadir=str(settings.streams.data_dir / t.app_id()),
        topic_partitions=t.partitions,
        topic_replication_factor=t.replication_factor,
        table_standby_replicas=settings.streams.table_standby_replicas,
        producer_acks=-1,
        web_enabled=False,
        key_serializer="raw",
        value_serializer="json",
        consumer_auto_offset_reset="earliest",
        # at-least-once: Faust flushes the producer (outputs + changelogs, acks=all) before
        # every offset commit; commits run on a timer, not inline every few records
        broker_commit_every=settings.streams.commit_every,
        broker_commit_interval=settings.streams.commit_interval_s,
        producer_linger=settings.streams.producer_linger_ms / 1000.0,
        producer_max_batch_size=settings.streams.producer_batch_kb * 1024,
        broker_session_timeout=settings.streams.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.streams.session_timeout_s / 3),
    )


def build_app(settings: Settings) -> faust.App:
    """A Faust app whose id, tables and internal topics all carry the topic prefix."""
    t = settings.topics
    app = faust.App(t.app_id(), **app_config(settings))
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    targets = {
        k: app.topic(t.name(k), **raw)
        for k in ("decisions", "alerts", "enforcement", "dead_letters", "decisions_shadow")
    }
    scores_topic = app.topic(t.name("scores"), partitions=t.partitions, **raw)
    by_account = app.topic(
        t.internal("decisions_by_account"),
        partitions=t.account_partitions,
        internal=True,
        **raw,
    )
    audit_in = audit_in_topic(app, settings)
    targets.update(by_account=by_account, audit_in=audit_in)
    state = app.Table("stream-state", default=None, partitions=t.partitions, key_type=str)
    ledgers = app.Table(
        "account-ledger", default=None, partitions=t.account_partitions, key_type=str
    )
    app.sensors.add(guard.ExitOnSendError(STAGE))
    background = guard.Background(settings.streams.pin_concurrency)
    order = guard.contiguous(app)
    guard.watch_stalls(app, settings, order)
    writes = guard.deferred_writes(app)
    lag.install(
        app,
        STAGE,
        {scores_topic.get_topic_name(), by_account.get_topic_name()},
        settings.metrics.lag_interval_s,
    )
    proc = Processor(settings)
    shadow_state = (
        app.Table("stream-state-shadow", default=None, partitions=t.partitions, key_type=str)
        if proc.shadow is not None
        else None
    )
    pinner = Pinner(settings)
    # fail fast: the hot mark is a hint, and waiting on Redis retries would stall decisions
    redis = redisio.hot_path_client(settings)
    hot_ttl = settings.streams.hot_ttl_s

    out_count: dict[str, Any] = {}

    async def mark_hot(stream_key: str, hot: bool) -> None:
        """Set or clear the stream's hot mark (``stream_key`` from ``scope.stream``): only a
        sampling hint, so Redis down must not stop decisions (counted and logged instead)."""
        key = redisio.key(settings, "hot", stream_key)
        try:
            await (redis.set(key, b"1", ex=hot_ttl) if hot else redis.delete(key))
        except Exception as exc:
            REDIS_ERRORS.inc()
            log.warning(
                "could not %s %s hot in Redis: %s", "mark" if hot else "unmark", stream_key, exc
            )

    async def send(out: Out, value: bytes | None = None) -> bytes:
        """Hand a record to the producer. The await returns once it is buffered, not acked, so
        sends do not wait on the broker one by one; the commit waits for all of them."""
        topic = targets[out.topic]
        value = records.encode(out.record) if value is None else value
        await topic.send(key=out.key.encode(), value=value)
        if out.topic not in out_count:
            out_count[out.topic] = metrics.RECORDS_OUT.labels(stage=STAGE, topic=out.topic)
        out_count[out.topic].inc()
        return value

    async def send_dead(rec: records.DeadLetter) -> None:
        await send(Out("dead_letters", rec.key or "", rec))

    failures = Failures(
        STAGE, settings.dead_letters, send_dead, fatal=(KafkaError, ProducerSendError)
    )

    async def pin(d: Decision) -> None:
        pinned = await asyncio.to_thread(pinner.pin, d, proc.policies.policy)
        if pinned is not None:
            await send(pinned)

    async def on_scores(sc: Scores, tp: Any) -> None:
        skey = scope.stream(sc)
        res = proc.on_scores(state.get(skey), sc)
        keep(state, skey, res.state, res.persist, writes, tp)
        for out in res.outputs:
            value = await send(out)
            if isinstance(out.record, Decision):
                await send(Out("by_account", scope.account(out.record), out.record), value)
                DECISIONS.labels(action=out.record.action, category=_domain(out.record)).inc()
                # file I/O on a thread, off the decision path; the commit waits for it
                await background.start(pin(out.record))
                metrics.CAPTURE_TO_DECISION.labels(action=out.record.action).observe(
                    max(0.0, time.time() - sc.captured_at)
                )
        if res.hot:
            await mark_hot(skey, True)
        if shadow_state is not None:  # the shadow policy: its own state, its own topic only
            shadow = proc.on_scores_shadow(shadow_state.get(skey), sc)
            keep(shadow_state, skey, shadow.state, shadow.persist, writes, tp)
            for out in shadow.outputs:
                await send(out)

    async def on_decision(d: Decision) -> None:
        akey = scope.account(d)
        led, outs = proc.on_decision(ledgers.get(akey), d)
        ledgers[akey] = led
        for out in outs:
            await send(out)

    scores_in = metrics.RECORDS_IN.labels(stage=STAGE, topic="scores")

    @app.agent(scores_topic)
    async def decide(stream: faust.StreamT) -> None:
        decode = decoder(Scores)
        async for event in guard.in_order(app, settings, stream, order):
            scores_in.inc()
            tp = event.message.tp
            await failures.handle(event.message, decode, lambda sc, tp=tp: on_scores(sc, tp))

    @app.agent(by_account)
    async def count(stream: faust.StreamT) -> None:
        async for event in guard.in_order(app, settings, stream, order):
            await failures.handle(event.message, decoder(Decision), on_decision)

    add_review_agents(
        app,
        settings,
        state=state,
        ledgers=ledgers,
        proc=proc,
        send=send,
        targets=targets,
        mark_hot=mark_hot,
        failures=failures,
        order=order,
        pinner=pinner,
    )
    chain = add_audit_agents(app, settings, audit_in=audit_in, failures=failures, order=order)
    guard.drain_before_commit(app.producer, background, chain.settle, writes)
    return app


async def prepare_topics(settings: Settings) -> None:
    """Every topic the worker reads or writes, before Faust starts: a consumer that subscribes
    before Faust has declared its internal topics ignores them until its next rebalance, and a
    table whose changelog is not in the metadata yet refuses every record (PartitionsMismatch,
    seen under load in `make demo`). Changelogs are compacted, as Faust makes them."""
    from framewatch.kafkaio import create_topics

    t = settings.topics
    changelogs = t.changelogs_all()
    await create_topics(
        settings,
        extra={**t.internal_all(), **changelogs},
        configs={name: {"cleanup.policy": "compact"} for name in changelogs},
    )
    await ensure_audit_retention(settings)


def run_worker(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT (Faust handles the signals and a clean rebalance)."""
    import asyncio

    asyncio.run(prepare_topics(settings))
    if settings.metrics.enabled:
        metrics.serve(
            STAGE, settings.metrics.host, settings.metrics.streams_port, settings.metrics.port_dir
        )
        init_series()
    settings.streams.data_dir.mkdir(parents=True, exist_ok=True)
    app = build_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
    return 0
