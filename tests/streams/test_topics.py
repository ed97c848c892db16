"""The worker creates every topic it uses before Faust starts, changelogs included."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from framewatch import kafkaio
from framewatch.settings import Settings
from streams.app import prepare_topics


async def test_changelogs_exist_compacted_with_their_sources_partitions_before_faust(
    settings: Settings,
) -> None:
    # `make demo` under load: the audit-head changelog was missing from Faust's first metadata
    # fetch ("Ignoring missing topic"), and every audit record was refused (PartitionsMismatch)
    t = settings.topics
    await prepare_topics(settings)
    admin = AIOKafkaAdminClient(**kafkaio.client_config(settings))
    await admin.start()
    try:
        names = list(t.changelogs_all())
        assert len(names) == 4 and t.changelog("audit-head") in names
        described = await admin.describe_topics([*names, t.internal("audit_in")])
        meta = {m["topic"]: len(m["partitions"]) for m in described}
        assert meta[t.changelog("audit-head")] == meta[t.internal("audit_in")] == t.partitions
        assert meta[t.changelog("account-ledger")] == t.account_partitions
        assert meta[t.changelog("stream-state")] == t.partitions
        for name in names:
            [resp] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
            cfg = {e[0]: e[1] for e in resp.resources[0][4]}
            assert cfg["cleanup.policy"] == "compact", name
    finally:
        await admin.close()
    await prepare_topics(settings)  # a second worker start finds them all: nothing changes
