"""Appeal outcomes reach the tenant: a user appeals two blocks through the console's API, a
reviewer overturns one and upholds the other, and the tenant's webhook (a real aiohttp receiver
on 127.0.0.1 that checks framewatch's signature) gets both verdicts with their appeal ids, and
for the overturned one the clearing decision with its corrected DSA statement. Real streams
worker, alert router, console process, Kafka and Redis.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from framewatch import apikeys, records, redisio
from framewatch.records import Decision
from framewatch.settings import Settings
from streams import statement
from tests.alerts.conftest import FAST, SECRET, Running, SinkServer, wait_for
from tests.console.helpers import PASSWORD, ConsoleProc, Session, csrf
from tests.streams.helpers import scores
from tests.streams.worker import Worker, collect, produce

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(make_settings: Callable[..., Settings], sinks: SinkServer, tmp_path: Path) -> Settings:
    routing = tmp_path / "routing.yaml"
    routing.write_text(f"""\
sinks:
  platform-a: {{type: webhook, url: "{sinks.url}/hook", secret: {SECRET}, timeout_s: 1}}
  platform-b: {{type: webhook, url: "{sinks.url}/hook-b", secret: {SECRET}, timeout_s: 1}}
routes:
  - name: tenant-a appeal outcomes
    match: {{types: [review], tenant: [tenant-a], appeal: true}}
    sinks: [platform-a]
  - name: tenant-a decisions
    match: {{types: [decision], tenant: [tenant-a]}}
    sinks: [platform-a]
  - name: tenant-b everything
    match: {{types: [review, decision], tenant: [tenant-b]}}
    sinks: [platform-b]
""")
    return make_settings(
        streams={"session_timeout_s": 8},
        evidence={"dir": str(tmp_path / "evidence")},
        alerts={**FAST, "routing_file": routing},
    )


def api(url: str, key: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


async def test_upheld_and_overturned_appeals_reach_the_tenants_webhook(
    settings: Settings, worker: Worker, console: ConsoleProc, sinks: SinkServer
) -> None:
    router = Running(settings)
    try:
        t0 = time.time() - 300
        items = []
        for stream in ("cam-1", "cam-2"):  # two blocks of tenant-a (gore 0.95, three frames)
            for i in range(3):
                sc = scores(i, stream, t0=t0, cats={"violence.gore": 0.95}, account="acct-1",
                            tenant="tenant-a").model_copy(update={"frame_id": f"{stream}-f{i}"})  # fmt: skip
                items.append((stream, records.encode(sc)))
        await produce(settings, items)
        deadline = time.monotonic() + 90
        blocks: dict[str, Decision] = {}
        while len(blocks) < 2 and time.monotonic() < deadline:
            recs = await collect(settings, "decisions", want=2, timeout=3.0, worker=worker)
            blocks = {r.stream_id: r for r in recs if isinstance(r, Decision) and r.action == "block"}  # fmt: skip
        assert sorted(blocks) == ["cam-1", "cam-2"]

        key = apikeys.create(settings, redisio.sync_client(settings), "tenant-a")
        console.wait_ready()
        appeals = {}
        for stream, d in blocks.items():
            for _ in range(60):  # until the console has read the decision
                try:
                    appeals[stream] = api(console.url + "/v1/appeals", key,
                                          {"decision_id": d.decision_id, "reason": "a film"})  # fmt: skip
                    break
                except urllib.error.HTTPError as e:
                    assert e.code == 404, e.read()
                    time.sleep(1)
        assert sorted(appeals) == ["cam-1", "cam-2"]

        alice = Session(console.url)
        alice.login("alice", PASSWORD)
        for stream, form in (("cam-1", {"action": "overturn", "reason_code": "context_allowed",
                                        "note": "a scene from a film"}),
                             ("cam-2", {"action": "uphold"})):  # fmt: skip
            path = f"/items/tenant-a/appeal/{appeals[stream]['appeal_id']}"
            status, page = alice.get(path)
            assert status == 200, page[:300]
            status, body = alice.post(path + "/verdict", {"csrf": csrf(page), **form})
            assert status == 200, body[:300]

        def delivered() -> list[dict[str, Any]]:
            return [h.json() for h in sinks.accepted("/hook")]

        def both_outcomes_and_the_correction() -> bool:
            got = delivered()
            verdicts = [h for h in got if h["type"] == "review"]
            return len(verdicts) >= 2 and any(h.get("corrects") for h in got)

        await wait_for(both_outcomes_and_the_correction, timeout=90, what="appeal outcomes")
        got = delivered()
        assert sinks.bad_signatures == 0
        verdicts = {h["appeal_id"]: h for h in got if h["type"] == "review"}
        one, two = appeals["cam-1"]["appeal_id"], appeals["cam-2"]["appeal_id"]
        assert set(verdicts) == {one, two}
        assert verdicts[one]["outcome"] == "overturned"
        assert verdicts[one]["decision_id"] == blocks["cam-1"].decision_id
        assert verdicts[two]["outcome"] == "upheld"
        assert verdicts[two]["decision_id"] == blocks["cam-2"].decision_id
        # the decision changed only where the appeal was granted: one correction, with the
        # corrected statement of reasons (valid by the Transparency Database's rules)
        fixes = [h for h in got if h["type"] == "decision" and h.get("corrects")]
        assert [f["corrects"] for f in fixes] == [blocks["cam-1"].decision_id]
        fix = records.decode(json.dumps(fixes[0]).encode(), Decision)
        assert fix.action == "allow" and fix.statement is not None
        statement.validate(fix.statement)
        assert blocks["cam-1"].decision_id in fix.statement.decision_facts
        assert fix.statement.end_date_visibility_restriction is not None
        # nothing reached the other tenant's webhook
        assert sinks.accepted("/hook-b") == []
        # and the user's appeal shows its outcome through the API
        a1 = api(f"{console.url}/v1/appeals/{one}", key)
        assert (a1["status"], a1["outcome"]) == ("decided", "overturned")
    finally:
        await router.close()
