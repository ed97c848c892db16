"""Worker agents for the audit trail (kept apart from the scores path in streams/app.py).

decisions + enforcement --relay--> internal audit-in (key: the record's key) --chain--> audit.
Reviews reach audit-in from the review agent. One agent instance owns each audit-in partition
and is the only writer of the same audit partition, so each audit partition is one chain; its
head (seq, hash, last audit-in offset) lives in the ``audit-head`` table keyed by partition and
recovers from its changelog after a restart. Up to ``streams.audit_in_flight`` links are in
flight at once (streams/audit_writer.py). See streams/audit.py for the guarantee.
"""

from __future__ import annotations

import logging
import os
import weakref
from typing import Any

import faust
import faust.streams as faust_streams
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from faust.types import TopicT
from prometheus_client import Counter

from framewatch import kafkaio, metrics, records
from framewatch.failures import Failures, decoder
from framewatch.metrics import stage_registry
from framewatch.settings import Settings
from streams import audit, guard
from streams.audit_writer import ChainWriter

_REG = stage_registry("streams")  # this stage's /metrics only (core metrics join there)

log = logging.getLogger(__name__)
STAGE = "streams"

AUDIT_ENTRIES = Counter(
    "framewatch_audit_entries_total", "links appended to the audit chain", registry=_REG
)


def audit_in_topic(app: faust.App, settings: Settings) -> TopicT:
    t = settings.topics
    return app.topic(
        t.internal("audit_in"),
        partitions=t.partitions,
        internal=True,
        key_serializer="raw",
        value_serializer="raw",
    )


def add_audit_agents(
    app: faust.App,
    settings: Settings,
    *,
    audit_in: TopicT,
    failures: Failures,
    order: guard.Contiguous,
) -> ChainWriter:
    """The relay and chain agents; the returned writer's ``settle`` must run before every
    offset commit (guard.drain_before_commit)."""
    t = settings.topics
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    published = app.topic(t.name("decisions"), t.name("enforcement"), **raw)
    audit_topic = app.topic(t.name("audit"), **raw)
    heads = app.Table("audit-head", default=None, partitions=t.partitions, key_type=str)
    events: dict[int, Any] = {}  # partition -> the event of its newest link

    def load(part: int) -> audit.Head:
        return audit.Head.from_json(heads.get(str(part)))

    def save(part: int, head: audit.Head) -> Any:
        """``heads[part] = head``, also from a callback: the table's store (RocksDB) and its
        changelog take the partition from the current event, so the event that built the
        partition's newest link stands in (Faust's context variable, set for this call)."""
        key, value = str(part), head.to_json()
        token = faust_streams._current_event.set(weakref.ref(events[part]))
        try:
            heads.data[key] = value
            return heads.send_changelog(part, key, value)
        finally:
            faust_streams._current_event.reset(token)

    def fail(exc: BaseException) -> None:
        log.critical(
            "audit chain broken: a link or its head save failed (%s: %s); exiting before the "
            "offset commit so it is replayed on restart",
            type(exc).__name__,
            exc,
        )
        logging.shutdown()
        os._exit(guard.EXIT_SEND_FAILED)

    writer = ChainWriter(settings.streams.audit_in_flight, load, save, fail)

    @app.on_partitions_assigned.connect  # type: ignore[misc]
    async def _reload_tips(*args: Any, **kwargs: Any) -> None:
        writer.reset()  # the revoke before it settled every link (guard.drain_before_commit)

    @app.agent(published)
    async def relay(stream: faust.StreamT) -> None:
        """Copy what was published to audit-in, keyed as it was (a stream's records chain in
        one partition)."""
        async for event in guard.in_order(app, settings, stream, order):
            await audit_in.send(key=event.key, value=event.value)

    @app.agent(audit_in)
    async def chain(stream: faust.StreamT) -> None:
        async for event in guard.in_order(app, settings, stream, order):
            msg = event.message

            async def link(rec: Any, msg: Any = msg, event: Any = event) -> None:
                part = msg.partition
                written_at = msg.timestamp if msg.timestamp else records.now()
                step = audit.append(
                    writer.tip(part), rec, src_offset=msg.offset, written_at=written_at
                )
                if step is None:
                    return  # chained before a restart: the head already covers this offset
                entry, head = step
                events[part] = event
                # force: to the producer now, not at commit; the writer moves the saved head
                # once the broker acknowledged the link, and the commit waits for that
                await writer.write(
                    part,
                    head,
                    lambda: audit_topic.send(
                        key=event.key,
                        value=records.encode(entry),
                        partition=part,
                        force=True,
                    ),
                )
                AUDIT_ENTRIES.inc()
                metrics.RECORDS_OUT.labels(stage=STAGE, topic="audit").inc()

            await failures.handle(msg, decoder(), link)

    return writer


DYNAMIC_TOPIC_CONFIG = 1  # DescribeConfigs config_source of a topic-level override


async def ensure_audit_retention(settings: Settings) -> None:
    """Set the audit topic's retention (default: forever) so the chain's start never expires.

    AlterConfigs replaces a topic's overrides as a whole, so the ones already set are read first
    and sent back with retention.ms; nothing is sent when it is already right.
    """
    name = settings.topics.name("audit")
    want = str(settings.streams.audit_retention_ms)
    admin = AIOKafkaAdminClient(**kafkaio.client_config(settings))
    await admin.start()
    errors: list[str] = []
    try:
        current: dict[str, str] = {}
        for resp in await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)]):
            for res in resp.resources:  # (error, message, type, name, entries)
                for entry in res[4]:  # (name, value, read_only, source | is_default, ...)
                    source = entry[3]
                    dynamic = (
                        source is False if resp.API_VERSION == 0 else source == DYNAMIC_TOPIC_CONFIG
                    )
                    if dynamic and entry[1] is not None:
                        current[entry[0]] = entry[1]
        if current.get("retention.ms") == want:
            return
        for resp in await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, {**current, "retention.ms": want})]
        ):
            for res in resp.resources:  # (error_code, error_message, resource_type, name)
                if res[0]:
                    errors.append(f"error {res[0]}: {res[1]}")
    except Exception as exc:  # a cluster may forbid it; the chain still works
        errors.append(str(exc))
    finally:
        await admin.close()
    if errors:
        log.warning(
            "could not set retention.ms on the audit topic %s (%s); set it yourself so the "
            "chain's first links are kept",
            name,
            "; ".join(errors),
        )
