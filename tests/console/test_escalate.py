"""Escalate to red line, end to end: the console's verdict -> reviews topic -> the real streams
worker blocks the stream, raises a red-line alert and puts the reviewed decision's evidence
under legal hold -> the real alert router pages PagerDuty and Slack (local receivers that apply their published rules). One tenant's escalation touches
only that tenant's stream, though another tenant has a stream of the same id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from framewatch import records
from framewatch.evidence import EvidenceStore
from framewatch.records import Alert, AuditEntry, Decision
from framewatch.settings import Settings
from tests.alerts.conftest import FAST, SECRET, Running, SinkServer, wait_for
from tests.console.helpers import PASSWORD, ConsoleProc, Session, cli, csrf, sample_jpegs
from tests.streams.helpers import scores
from tests.streams.worker import Worker, collect, produce, until

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(make_settings: Callable[..., Settings], sinks: SinkServer, tmp_path: Path) -> Settings:
    routing = tmp_path / "routing.yaml"
    routing.write_text(f"""\
sinks:
  pd: {{type: pagerduty, url: "{sinks.url}/pd", routing_key: rk-123, timeout_s: 1}}
  slack: {{type: slack, url: "{sinks.url}/slack", timeout_s: 1}}
  platform: {{type: webhook, url: "{sinks.url}/hook", secret: {SECRET}, timeout_s: 1}}
routes:
  - name: oncall
    match: {{types: [alert], red_line: true}}
    sinks: [pd, slack]
  - name: tenant-a platform
    match: {{types: [decision], tenant: [tenant-a]}}
    sinks: [platform]
""")
    return make_settings(
        streams={"session_timeout_s": 8},
        evidence={"dir": str(tmp_path / "evidence")},
        alerts={**FAST, "routing_file": routing},
    )


async def test_escalation_blocks_once_and_pages_once_for_that_tenant_only(
    settings: Settings, worker: Worker, console: ConsoleProc, sinks: SinkServer
) -> None:
    router = Running(settings)
    try:
        t0 = time.time() - 120
        # the same stream id in two tenants, both crossing the review threshold (not a block);
        # the frames staged as the scorer stages them, so the review decisions pin evidence
        store = EvidenceStore.from_settings(settings)
        jpegs = sample_jpegs(3)
        items = []
        for tenant in ("tenant-a", "tenant-b"):
            for i in range(3):
                sc = scores(i, "cam-1", t0=t0, cats={"violence.gore": 0.6}, account="acct-1",
                            tenant=tenant).model_copy(update={"frame_id": f"{tenant}-f{i}"})  # fmt: skip
                if store.should_stage(sc):
                    store.stage(sc, jpegs[i])
                items.append(("cam-1", records.encode(sc)))
        await produce(settings, items)

        def two_reviews(rs: list) -> bool:
            return sum(isinstance(r, Decision) and r.action == "review" for r in rs) >= 2

        ds = [r for r in await until(settings, "decisions", two_reviews, worker)
              if isinstance(r, Decision)]  # fmt: skip
        review = next(d for d in ds if d.tenant == "tenant-a" and d.action == "review")
        path = f"/items/tenant-a/review/{review.decision_id}"

        console.wait_ready()
        s = Session(console.url)
        s.login("alice", PASSWORD)
        status, page = s.get(path)
        assert status == 200, page[:300]
        assert "Escalate to red line" in page
        status, body = s.post(path + "/verdict", {"csrf": csrf(page), "action": "escalate",
                                                  "note": "a real weapon, not a film"})  # fmt: skip
        assert status == 200, body[:300]
        assert review.decision_id not in body  # it left the queue

        def blocked(rs: list) -> bool:
            return any(isinstance(r, Decision) and r.action == "block" for r in rs)

        ds = [r for r in await until(settings, "decisions", blocked, worker)
              if isinstance(r, Decision)]  # fmt: skip
        blocks = [d for d in ds if d.action == "block"]
        assert len(blocks) == 1, blocks
        block = blocks[0]
        assert (block.tenant, block.stream_id, block.red_line) == ("tenant-a", "cam-1", True)
        assert block.reasons[0].source == "review" and block.statement is not None
        assert block.statement.automated_decision == "AUTOMATED_DECISION_PARTIALLY"

        # on-call is paged once (PagerDuty and Slack accept it: their published rules)
        await wait_for(lambda: sinks.accepted("/pd") and sinks.accepted("/slack"),
                       timeout=60, what="the red-line page")  # fmt: skip
        await asyncio.sleep(3)  # anything more (a second page) would have come by now
        pd = sinks.accepted("/pd")
        assert len(pd) == 1 and len(sinks.accepted("/slack")) == 1 and not sinks.refused
        ev = pd[0].json()
        assert ev["event_action"] == "trigger" and ev["payload"]["severity"] == "critical"
        assert ev["payload"]["source"] == "cam-1"
        # the tenant's platform webhook gets the block (and only tenant-a's decisions)
        hook = [h.json() for h in sinks.accepted("/hook")]
        assert [h.get("decision_id") for h in hook if h.get("action") == "block"] == [
            block.decision_id
        ]
        assert all(h.get("tenant") == "tenant-a" for h in hook)

        alerts = [r for r in await collect(settings, "alerts", want=1, worker=worker)
                  if isinstance(r, Alert)]  # fmt: skip
        assert [(a.tenant, a.kind, a.red_line) for a in alerts] == [("tenant-a", "trigger", True)]
        assert "alice" in alerts[0].summary

        # the audit chain holds the verdict with the reviewer's id, and the block
        def chained(rs: list) -> bool:
            types = {(r.record_type, r.record.get("decision_id"), r.record.get("legal_hold"))
                     for r in rs if isinstance(r, AuditEntry)}  # fmt: skip
            return {("review", review.decision_id, None), ("decision", block.decision_id, None),
                    ("evidence", review.decision_id, True)} <= types  # fmt: skip

        audit = [r for r in await until(settings, "audit", chained, worker)
                 if isinstance(r, AuditEntry)]  # fmt: skip
        rv = [a.record for a in audit if a.record_type == "review"]
        assert [(r["outcome"], r["reviewer"], r["tenant"]) for r in rv] == [
            ("escalated", "alice", "tenant-a")
        ]
        assert any(a.record_type == "decision" and a.record["decision_id"] == block.decision_id
                   for a in audit)  # fmt: skip
        # the escalated decision's evidence is now under legal hold, as a red line's is
        held = [a.record for a in audit if a.record_type == "evidence"
                and a.record["decision_id"] == review.decision_id]  # fmt: skip
        assert [h["legal_hold"] for h in held] == [False, True]
        assert held[1]["expires_at"] is None
        ok = cli(settings, worker.data_dir, "audit", "verify")
        assert "ok" in ok.lower() or "verified" in ok.lower(), ok
    finally:
        await router.close()
