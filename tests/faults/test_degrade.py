"""What needs Redis waits or degrades, and says so in a metric (real Redis, stopped and started).

Bugs these pin down, found by the redis-down fault scenario:
- the alert router exited on the first Redis error, so pages waited for a restart (6 of 6
  red-line pages missed in a 30 s outage); now it waits for Redis and counts the waits;
- the scorer's cache waited on every frame for a Redis that does not answer (5 s a lookup, again
  a write); now one error bypasses the cache for a pause;
- a refused policy file was only logged; now a gauge and a counter say so.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from alerts.router import Router
from alerts.routing import Routing
from framewatch import metrics, taxonomy
from framewatch.local import RedisServer, free_port
from framewatch.settings import load_settings
from scoring.cache import ScoreCache
from scoring.scorer import Scored
from streams.policy import PolicyStore

pytestmark = [pytest.mark.faults, pytest.mark.quick]


def sample(name: str, **labels: str) -> float:
    return metrics.sample_value(name, labels) or 0.0


@pytest.fixture
def redis_server(tmp_path: Path) -> RedisServer:
    server = RedisServer(tmp_path / "redis", free_port())
    yield server  # type: ignore[misc]
    server.stop(keep_data=False)


async def test_router_waits_for_redis_and_says_so(redis_server: RedisServer) -> None:
    s = load_settings(redis_url=redis_server.url, redis_prefix="t:")
    routing = Routing.model_validate(
        {
            "sinks": {"h": {"type": "webhook", "url": "http://127.0.0.1:9/x", "secret": "s"}},
            "routes": [{"name": "all", "sinks": ["h"]}],
        }
    )
    router = Router(s, routing)
    waits = sample("framewatch_alerts_redis_waits_total")
    # Redis is not running yet: the call waits instead of failing ...
    call = asyncio.create_task(router.redis.set("t:mark", b"1"))
    await asyncio.sleep(1.5)
    assert not call.done()
    assert sample("framewatch_alerts_redis_waiting") == 1
    assert sample("framewatch_alerts_redis_waits_total") > waits
    # ... and completes once Redis is back, so the de-dup mark is written, not skipped
    await asyncio.to_thread(redis_server.start)
    assert await asyncio.wait_for(call, 20)
    assert await router.redis.get("t:mark") == b"1"
    assert sample("framewatch_alerts_redis_waiting") == 0
    await router.redis.aclose()


async def test_score_cache_is_bypassed_after_a_redis_error() -> None:
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    from framewatch import redisio

    s = load_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_prefix="t:")
    client = redisio.async_client(s, retry=Retry(NoBackoff(), 0))
    cache = ScoreCache(s, "m@1", client)
    errors = sample("framewatch_scoring_cache_total", result="error")
    bypassed = sample("framewatch_scoring_cache_total", result="bypassed")
    assert await cache.get("t", b"jpeg") is None  # Redis down: a miss, never an exception
    await cache.put("t", b"jpeg", Scored(scores={"sexual": 0.1}), None, None)
    assert await cache.get("t", b"jpeg") is None
    # one real attempt, then the cache stays out of the way for score_cache_pause_s
    assert sample("framewatch_scoring_cache_total", result="error") == errors + 1
    assert sample("framewatch_scoring_cache_total", result="bypassed") == bypassed + 2
    cache._skip_until = time.monotonic() - 1  # the pause is over: it tries Redis again
    assert await cache.get("t", b"jpeg") is None
    assert sample("framewatch_scoring_cache_total", result="error") == errors + 2
    await client.aclose()


def test_invalid_policy_keeps_the_running_one_and_says_so(tmp_path: Path) -> None:
    tax = taxonomy.load()
    store = PolicyStore(tmp_path, tax)
    running = store.policy.version
    refused = sample("framewatch_streams_policy_refused_total")
    (tmp_path / "default.yaml").write_text("rules:\n  sexual: {review: [0.5\n")
    assert store.maybe_reload() is False
    assert store.policy.version == running and store.last_error is not None
    assert sample("framewatch_streams_policy_ok") == 0
    assert sample("framewatch_streams_policy_refused_total") == refused + 1
    (tmp_path / "default.yaml").unlink()
    store.maybe_reload()
    assert store.policy.version == running
    assert sample("framewatch_streams_policy_ok") == 1


@pytest.mark.integration
async def test_ingest_waits_for_an_unreachable_broker_at_start(
    make_settings, kafka_bootstrap: str
) -> None:  # type: ignore[no-untyped-def]
    """Found by restart-broker: a stream going live while Kafka restarted died with a traceback."""
    from devkit.tcpproxy import TcpProxy
    from devkit.testdata import testdata_dir
    from framewatch.kafkaio import create_topics
    from ingest.engine import StreamMeta
    from ingest.runner import StreamIngester

    host, port = kafka_bootstrap.rsplit(":", 1)
    async with TcpProxy((host, int(port))) as proxy:
        s = make_settings()
        await create_topics(s)
        s = s.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{proxy.port}"})
        await proxy.cut()  # Kafka unreachable when the stream starts
        waits = sample("framewatch_ingest_broker_waits_total")
        clip = testdata_dir() / "videos" / "doorknob-hd-no-bar.mp4"
        run = asyncio.create_task(StreamIngester(s, str(clip), StreamMeta("late", "a")).run())
        await asyncio.sleep(2.5)
        assert not run.done() and sample("framewatch_ingest_broker_waits_total") > waits
        proxy.restore()
        summary = await asyncio.wait_for(run, 60)
    assert summary.sent == summary.sampled > 0 and summary.error is None
