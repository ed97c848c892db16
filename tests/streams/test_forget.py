"""`framewatch account forget` through the real worker and broker: the ledger row goes (a
tombstone on its compacted changelog), the other tenant's account of the same id stays, and the
audit chain records the request with a digest, not the account id, and still verifies."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from framewatch import records
from framewatch.records import AuditEntry
from framewatch.settings import Settings
from streams.inspect import table_snapshot
from tests.streams.helpers import scores
from tests.streams.worker import Worker, env_for, produce
from tests.streams.worker import until as until_read

pytestmark = pytest.mark.integration


def cli(settings: Settings, worker: Worker, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "framewatch.cli", *args],
                          env=env_for(settings, worker.data_dir), capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def ledger(settings: Settings, worker: Worker, tenant: str) -> subprocess.CompletedProcess[str]:
    return cli(settings, worker, "account", "show", "acc-7", "--tenant", tenant, "--json")


def until(what: str, pred, timeout: float = 90):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


async def test_forget_deletes_the_ledger_of_one_tenants_account_and_chains_a_digest(
    settings: Settings, worker: Worker
) -> None:
    t0 = time.time() - 300
    items = []
    for tenant in ("ta", "tb"):  # the same account id in two tenants: two accounts
        for i in range(3):
            sc = scores(i, f"cam-{tenant}", t0=t0, cats={"violence.gore": 0.95}, account="acc-7",
                        tenant=tenant)  # fmt: skip
            items.append((f"cam-{tenant}", records.encode(sc)))
    await produce(settings, items)
    until("both ledgers", lambda: all(ledger(settings, worker, t).returncode == 0
                                      for t in ("ta", "tb")))  # fmt: skip
    assert json.loads(ledger(settings, worker, "ta").stdout)["strikes"]

    ask = cli(settings, worker, "account", "forget", "ta", "acc-7")
    assert ask.returncode == 2 and "--yes" in ask.stdout  # nothing happens without consent
    assert ledger(settings, worker, "ta").returncode == 0
    done = cli(settings, worker, "account", "forget", "ta", "acc-7", "--yes", "--by", "dpo",
               "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert "retention" in out["not_erased"]

    until("the ledger gone", lambda: ledger(settings, worker, "ta").returncode != 0)
    gone = ledger(settings, worker, "ta")
    assert "no ledger for account 'acc-7' of tenant 'ta'" in gone.stderr
    assert ledger(settings, worker, "tb").returncode == 0  # the other tenant's account stays
    snap = await table_snapshot(settings, settings.topics.changelog("account-ledger"))
    assert "ta/acc-7" in snap and snap["ta/acc-7"] is None  # a tombstone, compaction drops it
    assert snap["tb/acc-7"] is not None

    def forgets(recs: list) -> list[AuditEntry]:
        return [r for r in recs if isinstance(r, AuditEntry) and r.record_type == "forget"]

    [link] = forgets(await until_read(settings, "audit", forgets, worker))
    assert link.record["forget_id"] == out["forget_id"] and link.record["tenant"] == "ta"
    assert link.record["account_id"].startswith("sha256:") and "acc-7" not in json.dumps(
        link.record
    )
    assert link.record["requested_by"] == "dpo"
    ok = cli(settings, worker, "audit", "verify", "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
