"""Session-scoped real Kafka (KRaft) + Redis, and per-test isolated settings.

Enable with ``pytest_plugins = ["devkit.pytest_plugin"]``. One broker and one Redis
serve the whole run, on free ports under a temporary folder; when FRAMEWATCH_KAFKA_BOOTSTRAP /
FRAMEWATCH_REDIS_URL are set, those are used and nothing is started. Every test's ``settings``
has its own topic prefix and Redis key prefix, so tests never see each other's data.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from framewatch.local import KafkaBroker, RedisServer, ensure_jars, free_port
from framewatch.settings import Settings, load_settings


@pytest.fixture(scope="session")
def local_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker | None]:
    """The session's broker, or None when an external one is configured."""
    if os.environ.get("FRAMEWATCH_KAFKA_BOOTSTRAP"):
        yield None
        return
    base = load_settings()
    jars = ensure_jars(base.local.cache_dir, base.local.kafka_version)
    broker = KafkaBroker(
        jars, tmp_path_factory.mktemp("kafka"), free_port(), free_port(), base.local.kafka_heap
    )
    t0 = time.monotonic()
    broker.start()
    broker.startup_s = time.monotonic() - t0  # type: ignore[attr-defined]
    yield broker
    broker.stop(keep_data=False)


@pytest.fixture(scope="session")
def local_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer | None]:
    if os.environ.get("FRAMEWATCH_REDIS_URL"):
        yield None
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"), free_port())
    server.start()
    yield server
    server.stop(keep_data=False)


@pytest.fixture(scope="session")
def kafka_bootstrap(local_broker: KafkaBroker | None) -> str:
    return local_broker.bootstrap if local_broker else os.environ["FRAMEWATCH_KAFKA_BOOTSTRAP"]


@pytest.fixture(scope="session")
def redis_url(local_redis: RedisServer | None) -> str:
    return local_redis.url if local_redis else os.environ["FRAMEWATCH_REDIS_URL"]


def _slug(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "-", name).strip("-")[:40]


@pytest.fixture
def make_settings(
    request: pytest.FixtureRequest, kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> Callable[..., Settings]:
    """Build Settings for this test: real broker/Redis, unique topic + key prefixes.

    Keyword overrides are merged into the settings (nested sections as dicts).
    """
    unique = f"t-{_slug(request.node.name)}-{uuid.uuid4().hex[:6]}"

    def build(**overrides: Any) -> Settings:
        topics = {"prefix": f"{unique}.", "partitions": 3, "account_partitions": 3}
        topics.update(overrides.pop("topics", {}))
        metrics = {"enabled": False, "ingest_port": 0, "scoring_port": 0, "streams_port": 0,
                   "alerts_port": 0, "check_api_port": 0}  # fmt: skip
        metrics.update(overrides.pop("metrics", {}))
        evidence = {"dir": str(tmp_path / "evidence")}  # never the working folder's store
        evidence.update(overrides.pop("evidence", {}))
        return load_settings(
            kafka_bootstrap=kafka_bootstrap,
            redis_url=redis_url,
            redis_prefix=f"{unique}:",
            topics=topics,
            metrics=metrics,
            evidence=evidence,
            local={"state_dir": tmp_path / "local"},
            **overrides,
        )

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Isolated settings for this test against the session's real broker and Redis."""
    return make_settings()


@pytest.fixture
async def kafka_topics(settings: Settings) -> dict[str, str]:
    """Create this test's framewatch topics on the real broker."""
    from framewatch.kafkaio import create_topics

    return await create_topics(settings)
