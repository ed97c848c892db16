"""The console's HTTP rules on a real aiohttp server and the real Redis (no Kafka needed: the
index is filled directly): logins, CSRF, tenant walls, the exposure cap, appeals, /metrics."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import generate_latest

from console.auth import Auth
from console.index import Index
from console.numbers import refresh_gauges
from console.web import CTX, build_app
from framewatch import apikeys, redisio
from framewatch.metrics import served
from framewatch.records import Decision, Reason
from framewatch.settings import Settings

PASSWORD = "correct horse battery"


def dec(did: str, tenant: str, cat: str = "violence.gore", score: float = 0.6,
        red: bool = False, at: float = 1000.0, action: str = "review") -> Decision:  # fmt: skip
    return Decision(decision_id=did, stream_id=f"s-{did}", account_id="acct-42", tenant=tenant,
                    action=action, previous_state="ok",  # type: ignore[arg-type]
                    reasons=[Reason(category=cat, score=score, threshold=0.5, frames_seen=3,
                                    frames_window=5, rule=f"default.yaml:{cat}")],
                    red_line=red, policy_version="pv", first_frame_id="f", captured_at=at - 1,
                    decided_at=at)  # fmt: skip


@pytest.fixture
def settings(make_settings: Callable[..., Settings], tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(console={"exposure_cap_per_hour": 1, "login_max_failures_account": 3,
                                  "login_max_failures_address": 6,
                                  "login_tenant_max_failures": {"tb": 2}},
                         evidence={"dir": str(tmp_path / "ev")})  # fmt: skip


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    ix = Index()
    for d in (dec("gore-old", "ta", at=1000), dec("gore-new", "ta", at=2000),
              dec("red", "ta", cat="child_safety", score=0.4, red=True, at=3000),
              dec("hate", "ta", cat="hate.speech", at=1500),
              dec("theirs", "tb", at=1000),
              dec("blk", "ta", cat="hate.speech", score=0.9, action="block", at=900)):  # fmt: skip
        ix.add(d)
    app = build_app(settings, ix, tail=False)
    auth = Auth(settings, app[CTX].redis)
    await auth.add_user("alice", "reviewer", ["ta"], PASSWORD)
    await auth.add_user("lead", "lead", ["ta", "tb"], PASSWORD)
    async with TestClient(TestServer(app)) as c:
        yield c


async def login(c: TestClient, name: str, password: str = PASSWORD) -> int:
    page = await (await c.get("/login")).text()
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    r = await c.post("/login", data={"csrf": token, "name": name, "password": password})
    return r.status


def csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def order(page: str) -> list[str]:
    return re.findall(r'data-href="/items/\w+/\w+/([\w-]+)"', page)


async def test_login_needs_the_right_password_and_pages_need_a_login(client: TestClient) -> None:
    r = await client.get("/queue", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"].startswith("/login")
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert await login(client, "alice", "wrong password!") == 401
    assert await login(client, "nobody") == 401
    assert await login(client, "alice") == 200


async def test_failed_logins_are_throttled_per_name_and_address_and_audited(
    client: TestClient, settings: Settings
) -> None:
    async def attempt(name: str, password: str = PASSWORD) -> tuple[int, str, str | None]:
        page = await (await client.get("/login")).text()
        r = await client.post("/login", allow_redirects=False,
                              data={"csrf": csrf(page), "name": name, "password": password})  # fmt: skip
        return r.status, await r.text(), r.headers.get("Retry-After")

    for _ in range(3):  # alice's limit: login_max_failures_account
        assert (await attempt("alice", "a wrong guess"))[0] == 401
    status, page, retry = await attempt("alice")  # the right password, but throttled
    assert status == 429 and "too many failed logins for this user name" in page
    assert "try again in 15 minutes" in page and retry is not None and 0 < int(retry) <= 900
    # lead sees tenants ta and tb; tb's limit (2) is the stricter one
    for _ in range(2):
        assert (await attempt("lead", "a wrong guess"))[0] == 401
    assert (await attempt("lead"))[0] == 429
    # an admin lifts alice's throttle; the address still counts every failure (5 so far)
    c = client.server.app[CTX]
    assert await c.throttle.unlock("alice")
    assert (await attempt("alice"))[0] == 303
    assert (await attempt("nobody", "guess"))[0] == 401  # the 6th failure from this address
    status, page, _ = await attempt("alice")
    assert status == 429 and "too many failed logins for your address" in page
    # audited in the tenant's access log: who, what, from where; unknown names apart
    log = [(e["actor"], e["what"]) for e in c.evidence.access_log("ta")]
    assert log.count(("alice", "login_failed")) == 3 and ("alice", "login") in log
    assert log.count(("alice", "login_throttled")) == 2 and ("lead", "login_throttled") in log
    assert {e["object"] for e in c.evidence.access_log("ta")} == {"127.0.0.1"}
    assert ("nobody", "login_failed") in [(e["actor"], e["what"])
                                          for e in c.evidence.access_log("_console")]  # fmt: skip
    assert not [e for e in c.evidence.access_log("tb") if e["actor"] == "alice"]


async def test_login_goes_back_only_to_this_site(client: TestClient) -> None:
    for target, where in (("/numbers", "/numbers"), ("//evil.example/x", "/queue"),
                          ("/\\evil.example", "/queue"), ("https://evil.example", "/queue")):  # fmt: skip
        page = await (await client.get("/login")).text()  # the token is spent at each login
        r = await client.post("/login", allow_redirects=False, data={
            "csrf": csrf(page), "name": "alice", "password": PASSWORD, "next": target})  # fmt: skip
        assert r.status == 303 and r.headers["Location"] == where, target


async def test_queue_is_severity_then_age_and_walled_per_tenant(client: TestClient) -> None:
    await login(client, "alice")
    page = await (await client.get("/queue")).text()
    assert order(page) == ["red", "gore-old", "hate", "gore-new"]  # red line first; then oldest
    q = await (await client.get("/api/queue")).json()  # the same queue for scripts
    assert [i["item_id"] for i in q["items"]] == ["red", "gore-old", "hate", "gore-new"]
    assert q["total"] == 4 and {i["tenant"] for i in q["items"]} == {"ta"}
    assert "theirs" not in page and "SLA" in page
    assert (await client.get("/items/tb/review/theirs")).status == 404
    assert (await client.get("/queue?tenant=tb")).status == 200
    assert "theirs" not in await (await client.get("/queue?tenant=tb")).text()


async def test_post_without_csrf_token_is_refused(client: TestClient) -> None:
    await login(client, "alice")
    r = await client.post("/items/ta/review/hate/claim", data={})
    assert r.status == 403
    page = await (await client.get("/items/ta/review/hate")).text()
    r = await client.post("/items/ta/review/hate/claim", data={"csrf": csrf(page)})
    assert r.status == 200 and "Claimed by <strong>alice</strong>" in await r.text()


async def test_exposure_cap_holds_back_sensitive_items(client: TestClient) -> None:
    await login(client, "alice")
    assert (await client.get("/items/ta/review/gore-old")).status == 200  # 1 exposure = the cap
    page = await (await client.get("/queue")).text()
    assert order(page) == ["hate"] and "cap reached" in page
    assert (await client.get("/items/ta/review/hate")).status == 200  # not sensitive: no count


async def test_appeals_api_needs_the_tenants_key(client: TestClient, settings: Settings) -> None:
    key_a = apikeys.create(settings, redisio.sync_client(settings), "ta")
    body = {"decision_id": "blk", "reason": "it was satire"}
    assert (await client.post("/v1/appeals", json=body)).status == 401
    h = {"Authorization": f"Bearer {key_a}"}
    r = await client.post("/v1/appeals", json=body, headers=h)
    first = await r.json()
    assert r.status == 201 and first["status"] == "pending"
    r = await client.post("/v1/appeals", json=body, headers=h)
    assert r.status == 200 and (await r.json())["appeal_id"] == first["appeal_id"]
    r = await client.post("/v1/appeals", json={"decision_id": "theirs"}, headers=h)
    assert r.status == 404  # tenant tb's decision does not exist for ta
    r = await client.post("/v1/appeals", json={"decision_id": "blk", "x": 1}, headers=h)
    assert r.status == 400 and "x" in (await r.json())["error"]
    await login(client, "alice")
    page = await (await client.get("/queue")).text()
    assert first["appeal_id"] in page


async def test_metrics_and_numbers(client: TestClient) -> None:
    # /metrics is on the metrics port (framewatch.metrics.serve), not on the reviewers' port
    assert (await client.get("/metrics", allow_redirects=False)).status == 303  # a login first
    await refresh_gauges(client.server.app[CTX])
    text = generate_latest(served("console")).decode()
    assert 'framewatch_console_backlog{tenant="ta"} 4.0' in text
    await login(client, "lead")
    page = await (await client.get("/numbers")).text()
    assert "Reviewers" in page and 'id="n-backlog">5<' in page


async def test_an_erased_account_loses_its_appeals(client: TestClient, settings: Settings) -> None:
    from framewatch.records import AccountForget

    key_a = apikeys.create(settings, redisio.sync_client(settings), "ta")
    h = {"Authorization": f"Bearer {key_a}"}
    r = await client.post("/v1/appeals", json={"decision_id": "blk", "reason": "my face"},
                          headers=h)  # fmt: skip
    aid = (await r.json())["appeal_id"]
    c = client.server.app[CTX]
    forget = AccountForget(forget_id="f1", tenant="ta", account_id="acct-42", requested_at=1.0)
    c.index.add(forget)  # what the tailer does with a forget record, then:
    await c.forget_account(forget, c.index.by_account[("ta", "acct-42")])
    assert (await client.get(f"/v1/appeals/{aid}", headers=h)).status == 404


async def test_a_bigger_audience_is_reviewed_first_within_a_severity(
    client: TestClient, settings: Settings
) -> None:
    r = redisio.sync_client(settings)
    key_a, key_b = apikeys.create(settings, r, "ta"), apikeys.create(settings, r, "tb")
    url = "/v1/streams/s-gore-new/viewers"
    assert (await client.put(url, json={"viewers": 5})).status == 401
    bad = await client.put(url, json={"viewers": -1}, headers={"Authorization": f"Bearer {key_a}"})
    assert bad.status == 400 and "viewers" in (await bad.json())["error"]
    odd = await client.put("/v1/streams/%20x/viewers", json={"viewers": 1},
                           headers={"Authorization": f"Bearer {key_a}"})  # fmt: skip
    assert odd.status == 422 and "letters, digits" in (await odd.json())["error"]
    # another tenant's stream of the same id is another stream: ta's queue does not move
    r2 = await client.put(url, json={"viewers": 9000}, headers={"Authorization": f"Bearer {key_b}"})
    assert r2.status == 200
    await login(client, "alice")
    assert order(await (await client.get("/queue")).text()) == [
        "red",
        "gore-old",
        "hate",
        "gore-new",
    ]
    ok = await client.put(url, json={"viewers": 4200}, headers={"Authorization": f"Bearer {key_a}"})
    assert ok.status == 200
    # red lines still first; then the stream thousands watch, then the rest oldest first
    assert order(await (await client.get("/queue")).text()) == [
        "red",
        "gore-new",
        "gore-old",
        "hate",
    ]
    q = await (await client.get("/api/queue")).json()
    assert [i["viewers"] for i in q["items"]] == [None, 4200, None, None]
    # every replica reads the counts from Redis; an old count stops counting
    c = client.server.app[CTX]
    counts = await c.viewers.all(time.time())
    assert counts[("ta", "s-gore-new")] == 4200 and counts[("tb", "s-gore-new")] == 9000
    assert await c.viewers.all(time.time() + settings.console.viewers_ttl_s + 1) == {}
