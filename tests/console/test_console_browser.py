"""A reviewer in a real headless Chromium works a review the real streams worker made.

Real parts: the session's Kafka and Redis, the streams worker and the console as their own
processes, Debian's chromium driven through its chromedriver, frames from a bundled video.
Set CONSOLE_SCREENSHOTS=DIR to save the queue and item screenshots there.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from framewatch import apikeys, records, redisio
from framewatch.evidence import EvidenceStore
from framewatch.local import free_port
from framewatch.records import AuditEntry, Decision
from framewatch.settings import Settings
from tests.console.helpers import PASSWORD, ConsoleProc, Session, cli, csrf, sample_jpegs
from tests.streams.helpers import scores
from tests.streams.worker import Worker, produce, read_to_end, until

CHROMEDRIVER = "/usr/bin/chromedriver"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (shutil.which("chromium") and os.path.exists(CHROMEDRIVER)),
        reason="Debian's chromium and chromium-driver are not installed "
        "(apt-get install chromium chromium-driver)",
    ),
]


@pytest.fixture
def settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    return make_settings(
        streams={"session_timeout_s": 8}, evidence={"dir": str(tmp_path / "evidence")}
    )


@pytest.fixture
def console(settings: Settings, worker: Worker, tmp_path: Path) -> Iterator[ConsoleProc]:
    for name, tenant in (("alice", "tenant-a"), ("carol", "tenant-a"), ("bob", "tenant-b")):
        cli(settings, worker.data_dir, "console", "user", "add", name, "--tenant", tenant,
            "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    c = ConsoleProc(settings, worker.data_dir, free_port(), tmp_path / "console.log")
    yield c
    c.stop()
    print((tmp_path / "console.log").read_text()[-3000:])


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1360,900"):  # fmt: skip
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.implicitly_wait(10)
    yield drv
    drv.quit()


def staged_scores(store: EvidenceStore, tenant: str, stream: str, gore: list[float],
                  jpegs: list[bytes], t0: float, cat: str = "violence.gore",
                  ) -> list[tuple[str, bytes]]:  # fmt: skip
    """Scores as the scorer sends them, having staged each frame over the floor first."""
    out = []
    for i, g in enumerate(gore):
        sc = scores(i, stream, t0=t0, cats={cat: g}, account=f"acct-{stream}",
                    tenant=tenant).model_copy(update={"frame_id": f"{stream}-f{i}-{t0:.0f}"})  # fmt: skip
        if store.should_stage(sc):
            store.stage(sc, jpegs[i % len(jpegs)])
        out.append((stream, records.encode(sc)))
    return out


async def decisions_until(settings: Settings, worker: Worker, pred: Callable[[list], bool],
                          timeout: float = 90) -> list[Decision]:  # fmt: skip
    recs = await until(settings, "decisions", lambda rs: pred(of_decisions(rs)), worker, timeout)
    return of_decisions(recs)


def of_decisions(recs: list) -> list[Decision]:
    return [r for r in recs if isinstance(r, Decision)]


def wait(drv: Any) -> Any:
    """A wait that rides over a page being replaced (a form post reloads the page)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(drv, 20, ignored_exceptions=[StaleElementReferenceException])


def shot(drv: Any, name: str) -> None:
    folder = os.environ.get("CONSOLE_SCREENSHOTS")
    if folder:
        drv.save_screenshot(str(Path(folder) / name))


async def test_reviewer_reveals_and_overturns_a_pipeline_review(
    settings: Settings, worker: Worker, console: ConsoleProc, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    store = EvidenceStore.from_settings(settings)
    jpegs = sample_jpegs(6)
    t0 = time.time() - 120
    gore = [0.1, 0.3, 0.58, 0.62, 0.66, 0.2]  # k=3 of 5 over review 0.5 (< block 0.85)
    await produce(settings, staged_scores(store, "tenant-a", "sa", gore, jpegs, t0)
                  + staged_scores(store, "tenant-b", "sb", gore, jpegs, t0)
                  + staged_scores(store, "tenant-a", "sx", [0.95] * 3, jpegs, t0 + 10)
                  + staged_scores(store, "tenant-a", "sh", gore, jpegs, t0 - 1200, "hate.speech")
                  + staged_scores(store, "tenant-a", "sd", gore, jpegs, t0 - 90, "self_harm"))  # fmt: skip
    ds = await decisions_until(settings, worker, lambda ds: len(ds) >= 5)
    review_a = next(d for d in ds if d.stream_id == "sa" and d.action == "review")
    block_a = next(d for d in ds if d.stream_id == "sx" and d.action == "block")
    assert any(d.stream_id == "sb" and d.action == "review" for d in ds)
    console.wait_ready()
    # tenant A's platform reports 1,800 people watching sd: it goes first among the reviews
    r = redisio.sync_client(settings)
    key = apikeys.create(settings, r, "tenant-a")
    _put_viewers(console.url, key, "sd", 1800)

    # alice (tenant A) logs in; her queue holds A's review, nothing of tenant B
    browser.get(console.url + "/login")
    browser.find_element(By.ID, "name").send_keys("alice")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-href$="/review/{review_a.decision_id}"]')
    assert "violence.gore" in row.text and "tenant-a" in row.text
    assert "sb /" not in browser.find_element(By.ID, "queue").text
    first = browser.find_elements(By.CSS_SELECTOR, "#queue tbody tr")[0]
    assert "sd /" in first.text and "1,800" in first.text
    shot(browser, "console-queue.png")
    browser.find_element(By.CSS_SELECTOR, f'a.item-link[href$="{review_a.decision_id}"]').click()
    wait(browser).until(lambda b: "/items/" in b.current_url)

    # the evidence is blurred until clicked; the rule, policy version and thresholds show
    imgs = browser.find_elements(By.CSS_SELECTOR, ".frame img")
    assert len(imgs) >= 3 and all("blurred" in i.get_attribute("class") for i in imgs)
    assert browser.execute_script("return arguments[0].naturalWidth", imgs[-1]) > 0
    imgs[-1].click()
    assert "blurred" not in imgs[-1].get_attribute("class")
    page = browser.page_source
    assert review_a.policy_version in page and review_a.reasons[0].rule in page
    assert "review 0.50" in page and "block 0.85" in page  # thresholds on the timeline
    browser.find_element(By.ID, "claim").click()
    wait(browser).until(lambda b: "Claimed by alice" in b.find_element(By.ID, "claim-state").text)
    browser.find_elements(By.CSS_SELECTOR, ".frame img")[-1].click()
    shot(browser, "console-item.png")

    # carol (same tenant) cannot claim alice's item; bob (tenant B) cannot even see it
    carol = Session(console.url)
    carol.login("carol", PASSWORD)
    item = f"/items/tenant-a/review/{review_a.decision_id}"
    status, page = carol.get(item)
    assert status == 200 and "Claimed by <strong>alice</strong>" in page
    status, body = carol.post(item + "/claim", {"csrf": csrf(page)})
    assert status == 409 and "alice" in body
    status, _ = carol.post(item + "/verdict", {"csrf": csrf(page), "action": "uphold"})
    assert status == 409
    bob = Session(console.url)
    bob.login("bob", PASSWORD)
    assert bob.get(item)[0] == 404
    assert review_a.decision_id not in bob.get("/queue")[1]
    digest = store.manifest("tenant-a", review_a.decision_id, actor="test")["digest"]
    assert bob.get(f"/evidence/tenant-a/{review_a.decision_id}/{digest}")[0] == 404

    # alice overturns with a reason code; the keyboard works too ('o' needs the code first)
    Select(browser.find_element(By.ID, "reason_code")).select_by_value("context_allowed")
    browser.find_element(By.ID, "note").send_keys("cooking show, fake blood")
    browser.find_element(By.ID, "overturn").click()
    wait(browser).until(lambda b: "/queue" in b.current_url)
    assert review_a.decision_id not in browser.find_element(By.ID, "queue").get_attribute(
        "innerHTML"
    )

    # the worker cleared the stream: an allow that corrects the review
    ds = await decisions_until(settings, worker, lambda ds: any(
        d.corrects == review_a.decision_id for d in ds))  # fmt: skip
    assert any(d.corrects == review_a.decision_id and d.action == "allow" for d in ds)

    # an appeal of the block: alice upholds it first, so the appeal must go to someone else
    alice = Session(console.url)
    alice.login("alice", PASSWORD)
    bitem = f"/items/tenant-a/review/{block_a.decision_id}"
    assert alice.post(bitem + "/verdict", {"csrf": csrf(alice.get(bitem)[1]),
                                           "action": "uphold"})[0] == 200  # fmt: skip
    appeal = _post_appeal(console.url, key, block_a.decision_id)
    assert appeal["status"] == "pending"
    assert _post_appeal(console.url, "fwk_wrong", block_a.decision_id, expect=401)
    aitem = f"/items/tenant-a/appeal/{appeal['appeal_id']}"
    assert appeal["appeal_id"] in alice.get("/queue")[1]
    status, _ = alice.post(aitem + "/verdict", {"csrf": csrf(alice.get(aitem)[1]),
                                                "action": "overturn",
                                                "reason_code": "other"})  # fmt: skip
    assert status == 403
    status, _ = carol.post(aitem + "/verdict", {"csrf": csrf(carol.get(aitem)[1]),
                                                "action": "overturn", "reason_code": "other",
                                                "note": "appeal granted"})  # fmt: skip
    assert status == 200

    # the ledger lost the strike, the allow carries a corrected statement, the chain holds
    ds = await decisions_until(settings, worker, lambda ds: any(
        d.corrects == block_a.decision_id for d in ds))  # fmt: skip
    allow = next(d for d in ds if d.corrects == block_a.decision_id)
    assert allow.statement is not None and "appeal granted" in allow.statement.decision_facts
    led = json.loads(
        cli(
            settings,
            worker.data_dir,
            "account",
            "show",
            "acct-sx",
            "--tenant",
            "tenant-a",
            "--json",
        )
    )
    assert not any(s["decision_id"] == block_a.decision_id for s in _strikes(led))
    audit = await read_to_end(settings, "audit", worker=worker)
    entries = [e for e in audit if isinstance(e, AuditEntry)]
    reviewed = [e.record for e in entries if e.record_type == "review"]
    assert any(rv["reviewer"] == "alice" and rv["outcome"] == "overturned"
               and "[context_allowed]" in rv["note"] for rv in reviewed)  # fmt: skip
    assert any(rv["reviewer"] == "carol" and rv["note"].startswith("[appeal ") for rv in reviewed)
    pins = [e.record for e in entries if e.record_type == "evidence"]
    assert any(p["manifest_sha256"] == digest for p in pins)
    out = json.loads(cli(settings, worker.data_dir, "audit", "verify", "--json"))
    assert out["ok"]
    assert any(e["actor"] == "alice" for e in store.access_log("tenant-a"))
    assert status == 200 and carol.get("/numbers")[0] == 200

    # the transparency report, from the audit chain alone, counts both verdicts and the appeal
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
    rep = json.loads(cli(settings, worker.data_dir, "report", "transparency", "--from", day,
                         "--to", "2100-01-01", "--tenant", "tenant-a"))  # fmt: skip
    assert rep["appeals_decided"] == 1 and rep["appeal_outcomes"] == {"overturned": 1}
    assert rep["human_outcomes"]["overturned"] == 2 and rep["automated_decisions"] == 1
    assert rep["actions_per_category"]["violence.gore"]["block"] == 1
    browser.get(console.url + "/numbers")
    assert browser.find_element(By.ID, "n-backlog").text == "2"  # hate.speech and self_harm
    shot(browser, "console-numbers.png")


def _strikes(led: Any) -> list[dict[str, Any]]:
    rows = led if isinstance(led, list) else [led]
    return [s for row in rows for s in (row.get("ledger") or row).get("strikes", [])]


def _put_viewers(base: str, key: str, stream_id: str, viewers: int) -> None:
    import urllib.request

    req = urllib.request.Request(
        f"{base}/v1/streams/{stream_id}/viewers", method="PUT",
        data=json.dumps({"viewers": viewers}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


def _post_appeal(base: str, key: str, decision_id: str, expect: int = 201) -> dict[str, Any]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        base + "/v1/appeals",
        data=json.dumps({"decision_id": decision_id, "reason": "it was a film"}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == expect
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        assert e.code == expect, e.read()
        return {"status": e.code}
