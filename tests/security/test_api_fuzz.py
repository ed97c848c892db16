"""The HTTP APIs fuzzed from their own OpenAPI documents (schemathesis), against real servers.

Each API runs as its real command (`framewatch ingest serve`, `check-api`, `alerts serve`) on a
free port with the session's real Kafka and Redis. Every operation of the served
``/openapi.json`` gets schema-valid (positive) and schema-breaking (negative) requests; no answer
may be a 5xx, and every answer must match the document (status, content type, body schema).
The example count is bounded (FRAMEWATCH_FUZZ_EXAMPLES, default 40 per operation and mode) and
derandomized so CI is repeatable; raise it for a deeper run.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from framewatch import redisio
from framewatch.apikeys import create
from framewatch.settings import Settings
from tests.security.servers import ROUTING, serve

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

EXAMPLES = int(os.environ.get("FRAMEWATCH_FUZZ_EXAMPLES", "40"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
# totals over the module, printed at the end (the report's "fuzz cases run")
CASES: collections.Counter[str] = collections.Counter()


def fuzz(base: str, headers: dict[str, str]) -> dict[str, collections.Counter[int]]:
    """Run every operation of the served document; the status codes seen, per operation."""
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    seen: dict[str, collections.Counter[int]] = {}
    for result in schema.get_all_operations():
        op = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            statuses = seen[f"{op.label} [{mode.value}]"] = collections.Counter()

            @given(case=op.as_strategy(generation_mode=mode))
            @hsettings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                resp = case.call_and_validate(
                    base_url=base, headers=headers, checks=CHECKS, timeout=30
                )
                statuses[resp.status_code] += 1  # noqa: B023 (run() is called right here)

            try:
                run()
            except Unsatisfiable:  # nothing to break (e.g. GET /healthz has no inputs)
                assert mode is GenerationMode.NEGATIVE and not statuses
                del seen[f"{op.label} [{mode.value}]"]
    return seen


def report(api: str, seen: dict[str, collections.Counter[int]], capsys: Any) -> int:
    total = sum(sum(c.values()) for c in seen.values())
    CASES[api] += total
    with capsys.disabled():
        print(f"\nfuzz {api}: {total} cases")
        for label, c in seen.items():
            print(f"  {label}: {sum(c.values())} cases, statuses {dict(sorted(c.items()))}")
    return total


async def test_ingest_push_and_sources_api_survive_fuzzing(
    settings: Settings, kafka_topics: object, tmp_path: Path, capsys: Any
) -> None:
    key = create(settings, redisio.sync_client(settings), "tenant-fuzz")
    env = {"FRAMEWATCH_INGEST__SUPERVISOR_POLL_S": "3600"}  # never pull what the fuzzer adds
    with serve(settings, "ingest", "serve", port_env="FRAMEWATCH_INGEST__HTTP_PORT",
               log=tmp_path / "ingest.log", **env) as (base, _p):  # fmt: skip
        seen = fuzz(base, {"Authorization": f"Bearer {key}"})
    assert report("ingest", seen, capsys) > 0
    assert {"POST /v1/streams/{stream_id}/frames", "PUT /v1/sources/{stream_id}"} <= {
        k.split(" [")[0] for k in seen
    }
    # the fuzzer got past auth and validation: something was accepted, not only refused
    assert any(202 in c for c in seen.values()) or any(200 in c for c in seen.values())


async def test_check_api_survives_fuzzing(
    make_settings: Callable[..., Settings], tmp_path: Path, capsys: Any
) -> None:
    s = make_settings(scoring={"models": ["opennsfw"], "providers": ["CPUExecutionProvider"]})
    key = create(s, redisio.sync_client(s), "tenant-fuzz")
    with serve(s, "check-api", port_env="FRAMEWATCH_SCORING__HTTP_PORT",
               log=tmp_path / "check.log") as (base, _p):  # fmt: skip
        seen = fuzz(base, {"Authorization": f"Bearer {key}"})
    assert report("check-api", seen, capsys) > 0
    assert any(200 in c for c in seen.values())


async def test_alert_ack_api_survives_fuzzing(
    settings: Settings, kafka_topics: object, tmp_path: Path, capsys: Any
) -> None:
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING.format(url="http://127.0.0.1:9/hook", secret="s"))
    key = create(settings, redisio.sync_client(settings), "tenant-fuzz")
    env = {"FRAMEWATCH_ALERTS__ROUTING_FILE": str(routing)}
    with serve(settings, "alerts", "serve", port_env="FRAMEWATCH_ALERTS__HTTP_PORT",
               log=tmp_path / "alerts.log", **env) as (base, _p):  # fmt: skip
        headers = {"Authorization": f"Bearer {key}"}
        seen = fuzz(base, headers)
        # an open incident of this tenant: the 200 answer must match the document too
        r = redisio.sync_client(settings)
        r.sadd(redisio.key(settings, "alerts", "open"), "inc-fuzz")
        r.set(redisio.key(settings, "alerts", "tenant", "inc-fuzz"), "tenant-fuzz")
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        case = schema["/v1/alerts/{id}/ack"]["POST"].Case(path_parameters={"id": "inc-fuzz"})
        resp = case.call_and_validate(base_url=base, headers=headers, checks=CHECKS)
        assert resp.status_code == 200 and resp.json()["acknowledged"] is True
    assert report("alerts", seen, capsys) > 0
    with capsys.disabled():
        print(f"\nfuzz total so far: {sum(CASES.values())} cases {dict(CASES)}")
