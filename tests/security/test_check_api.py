"""The check API's walls: tenant keys, bounded work, cancellation, the one network guard."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from framewatch.settings import Settings
from scoring.api import app
from scoring.banks import BankStore
from scoring.scorer import Scorer
from tests.scoring.conftest import check_api, frames, jpeg
from tests.security.slow import trickle

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


class CountingScorer(Scorer):
    """The real models, counting the images they are asked to score."""

    def __init__(self, models) -> None:  # type: ignore[no-untyped-def]
        super().__init__(models)
        self.images = 0

    def score(self, images, qualities=None):  # type: ignore[no-untyped-def]
        self.images += len(images)
        return super().score(images, qualities)


@pytest.fixture(scope="module")
def models():  # type: ignore[no-untyped-def]
    from scoring.model import load_models

    return load_models(["opennsfw"], [], ["CPUExecutionProvider"])


@pytest.fixture
def scorer(models) -> CountingScorer:  # type: ignore[no-untyped-def]
    return CountingScorer(models)


@pytest.fixture(scope="module")
def data_url() -> str:
    img = jpeg(frames("chair-orig-22-sd-bar.mp4", count=1)[0][::4, ::4])
    return "data:image/jpeg;base64," + base64.b64encode(img).decode()


@asynccontextmanager
async def held_image(img: bytes) -> AsyncIterator[tuple[str, asyncio.Event, list[int]]]:
    """A loopback image server that answers only once `release` is set; counts requests."""
    release, hits = asyncio.Event(), [0]

    async def get(_r: web.Request) -> web.Response:
        hits[0] += 1
        await release.wait()
        return web.Response(body=img, content_type="image/jpeg")

    a = web.Application()
    a.router.add_get("/img.jpg", get)
    srv = TestServer(a)
    await srv.start_server()
    try:
        yield str(srv.make_url("/img.jpg")), release, hits
    finally:
        release.set()
        await srv.close()


def image(url: str) -> dict:
    return {"type": "image_url", "image_url": {"url": url}}


async def test_a_tenant_key_is_required_unless_turned_off(make_settings, scorer) -> None:  # type: ignore[no-untyped-def]
    async with check_api(make_settings(), scorer) as (base, auth), aiohttp.ClientSession() as s:
        for headers in ({}, {"Authorization": "Bearer fwk_unknown"}):
            for path, kw in (("/v1/check", {"data": b"x"}), ("/v1/moderations", {"json": {"input": "x"}})):  # fmt: skip
                async with s.post(f"{base}{path}", headers=headers, **kw) as r:
                    body = await r.json()
                    assert r.status == 401, body
                    assert body["error"]["code"] in ("missing_api_key", "invalid_api_key")
        async with s.post(f"{base}/v1/moderations", json={"input": "x"}, headers=auth) as r:
            assert r.status == 200
    open_ = make_settings(scoring={"check_require_api_key": False})
    async with check_api(open_, scorer) as (base, _), aiohttp.ClientSession() as s:
        r = await s.post(f"{base}/v1/moderations?tenant=t9", json={"input": "x"})
        assert r.status == 200
        assert (await r.json())["results"][0]["framewatch"]["policy"]["tenant"] == "t9"


async def test_parts_and_bytes_are_bounded_before_any_work(make_settings, scorer, data_url) -> None:  # type: ignore[no-untyped-def]
    s_ = make_settings(scoring={"check_max_parts": 4, "check_max_request_bytes": 200_000})
    async with check_api(s_, scorer) as (base, auth), aiohttp.ClientSession() as s:
        many = {"input": [image(data_url)] * 5}
        async with s.post(f"{base}/v1/moderations", json=many, headers=auth) as r:
            body = await r.json()
            assert r.status == 400 and "at most 4" in body["error"]["message"], body
        async with s.post(
            f"{base}/v1/moderations", json={"input": ["x"] * 5000}, headers=auth
        ) as r:
            assert r.status == 400
        assert scorer.images == 0  # refused before a single model ran
        async with s.post(f"{base}/v1/check", data=b"\0" * 300_000, headers=auth) as r:
            body = await r.json()
            assert r.status == 413 and body["error"]["code"] == "request_too_large", body
        for path in ("/v1/check", "/v1/moderations"):  # 100k-deep JSON: 400, never 500
            deep = b"[" * 100_000 + b"]" * 100_000
            headers = {**auth, "Content-Type": "application/json"}
            async with s.post(f"{base}{path}", data=deep, headers=headers) as r:
                assert r.status == 400, await r.text()


async def test_requests_in_flight_per_key_are_bounded(make_settings, scorer, data_url) -> None:  # type: ignore[no-untyped-def]
    s_ = make_settings(scoring={"check_max_requests_per_key": 1, "allow_private_urls": True})
    img = base64.b64decode(data_url.split(",", 1)[1])
    async with (held_image(img) as (url, release, hits), check_api(s_, scorer) as (base, auth),
                aiohttp.ClientSession() as s):  # fmt: skip
        first = asyncio.create_task(
            s.post(f"{base}/v1/moderations", json={"input": [image(url)]}, headers=auth)
        )
        while hits[0] == 0:  # the first request is in flight, held by the image server
            await asyncio.sleep(0.05)
        async with s.post(f"{base}/v1/moderations", json={"input": "x"}, headers=auth) as r:
            body = await r.json()
            assert r.status == 429 and body["error"]["code"] == "rate_limit_exceeded", body
        release.set()
        r1 = await first
        assert r1.status == 200
        async with s.post(f"{base}/v1/moderations", json={"input": "x"}, headers=auth) as r:
            assert r.status == 200  # the slot is free again


async def test_work_stops_when_the_client_goes_away(make_settings, scorer, data_url) -> None:  # type: ignore[no-untyped-def]
    """Served without aiohttp's handler cancellation: the API itself notices the hang-up."""
    s_ = make_settings(scoring={"allow_private_urls": True, "check_part_concurrency": 1})
    img = base64.b64decode(data_url.split(",", 1)[1])
    async with held_image(img) as (url, release, hits):
        srv = TestServer(app(s_, scorer))  # aiohttp's default: handlers are not cancelled
        await srv.start_server()
        from framewatch import apikeys, redisio

        key = apikeys.create(s_, redisio.sync_client(s_), "t")
        body = {"input": [image(url)] + [image(data_url)] * 5}
        try:
            async with aiohttp.ClientSession() as s:
                req = asyncio.create_task(s.post(srv.make_url("/v1/moderations"), json=body,
                                                 headers={"Authorization": f"Bearer {key}"}))  # fmt: skip
                while hits[0] == 0:
                    await asyncio.sleep(0.05)
                req.cancel()  # the client hangs up while the first part is being fetched
                await asyncio.gather(req, return_exceptions=True)
            await asyncio.sleep(0.5)
            release.set()
            await asyncio.sleep(3)  # time for the server to do whatever it still would
            assert scorer.images == 0, "parts were scored for a client that had gone"
        finally:
            await srv.close()


async def test_banks_are_watched_not_reloaded_per_part(
    settings, scorer, data_url, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    loads = [0]
    real = BankStore.load

    def counting(self):  # type: ignore[no-untyped-def]
        loads[0] += 1
        return real(self)

    monkeypatch.setattr(BankStore, "load", counting)
    async with check_api(settings, scorer) as (base, auth), aiohttp.ClientSession() as s:
        while loads[0] == 0:  # the watch's first load at start
            await asyncio.sleep(0.05)
        before = loads[0]
        body = {"input": [image(data_url)] * 3}
        async with s.post(f"{base}/v1/moderations", json=body, headers=auth) as r:
            assert r.status == 200
        async with s.post(f"{base}/v1/check", data=base64.b64decode(data_url.split(",")[1]),
                          headers=auth) as r:  # fmt: skip
            assert r.status == 200
        assert loads[0] == before
        assert scorer.images == 4


@pytest.mark.parametrize(
    "host",
    ["100.64.0.1", "100.100.100.200", "192.88.99.1", "[2002:7f00:1::1]", "[::ffff:10.0.0.1]"],
)
async def test_the_one_guard_refuses_relay_and_cgnat_addresses(
    settings: Settings, scorer, host: str
) -> None:  # type: ignore[no-untyped-def]
    async with check_api(settings, scorer) as (base, auth), aiohttp.ClientSession() as s:
        req = {"input": [image(f"http://{host}/a.jpg")]}
        async with s.post(f"{base}/v1/moderations", json=req, headers=auth) as r:
            body = await r.json()
            assert r.status == 400 and "address not allowed" in body["error"]["message"], body


async def test_refusals_are_no_dns_oracle(settings: Settings, scorer) -> None:  # type: ignore[no-untyped-def]
    async with check_api(settings, scorer) as (base, auth), aiohttp.ClientSession() as s:
        said = {}
        for host in ("localhost", "no-such-host.invalid"):
            req = {"image_url": f"http://{host}:9/a.jpg"}
            async with s.post(f"{base}/v1/check", json=req, headers=auth) as r:
                assert r.status == 400
                said[host] = (await r.json())["error"]["message"]
        assert "127.0.0.1" not in said["localhost"] and "resolves" not in said["localhost"]
        # an internal name and a missing one get the same answer
        assert said["localhost"].replace("localhost", "H") == said["no-such-host.invalid"].replace(
            "no-such-host.invalid", "H"
        )


async def test_the_checked_address_is_the_one_connected_to(settings, scorer, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """DNS rebinding: the guard's lookup says public, any later lookup says loopback."""
    img = jpeg(frames("chair-orig-22-sd-bar.mp4", count=1)[0][::4, ::4])
    real = socket.getaddrinfo
    seen = [0]

    def rebinding(host, *a, **kw):  # type: ignore[no-untyped-def]
        if host != "rebind.example":
            return real(host, *a, **kw)
        seen[0] += 1
        addr = "93.184.216.34" if seen[0] == 1 else "127.0.0.1"
        return real(addr, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    async with held_image(img) as (url, release, hits):
        release.set()
        port = url.split(":")[2].split("/")[0]
        async with check_api(settings, scorer) as (base, auth), aiohttp.ClientSession() as s:
            req = {"image_url": f"http://rebind.example:{port}/img.jpg"}
            async with s.post(f"{base}/v1/check", json=req, headers=auth) as r:
                body = await r.json()
        assert hits[0] == 0, "the fetch went to the rebound loopback address"
        assert r.status == 400 and body["error"]["code"] == "image_url_refused", body


def _holds(doc: dict, name: str, body: object) -> None:
    """``body`` against the document's schema ``name`` (refs resolved inside the document)."""
    from jsonschema import Draft202012Validator

    Draft202012Validator({**doc, "$ref": f"#/components/schemas/{name}"}).validate(body)


async def test_the_document_lists_exactly_what_the_handlers_accept_and_answer(
    make_settings, scorer, data_url
) -> None:  # type: ignore[no-untyped-def]
    """The served OpenAPI document is valid; every query parameter and body field it lists is
    taken, anything it does not list is refused (not ignored), and real answers hold to its
    answer schemas, which allow no undocumented field."""
    from openapi_spec_validator import validate

    async with check_api(make_settings(), scorer) as (base, auth), aiohttp.ClientSession() as s:
        async with s.get(f"{base}/openapi.json") as r:
            doc = await r.json()
        validate(doc)
        for path in ("/v1/check", "/v1/moderations"):
            params = {p["name"] for p in doc["paths"][path]["post"]["parameters"]}
            assert params == {"channel", "tenant"}, path
        query = {"channel": "kids", "tenant": "tenant-a"}  # the key's own tenant
        async with s.post(f"{base}/v1/check", params=query, headers=auth,
                          json={"image_url": data_url}) as r:  # fmt: skip
            body = await r.json()
        assert r.status == 200, body
        assert body["policy"] == {**body["policy"], "channel": "kids", "tenant": "tenant-a"}
        _holds(doc, "CheckResult", body)
        fields = set(doc["components"]["schemas"]["ModerationRequest"]["properties"])
        assert fields == {"model", "input"}
        text_and_image = {"model": "omni-moderation-latest",
                          "input": [{"type": "text", "text": "hi"}, image(data_url)]}  # fmt: skip
        async with s.post(f"{base}/v1/moderations", params=query, headers=auth,
                          json=text_and_image) as r:  # fmt: skip
            body = await r.json()
        assert r.status == 200, body
        _holds(doc, "ModerationResponse", body)
        assert body["results"][0]["framewatch"]["policy"]["channel"] == "kids"
        refusals = [
            ("/v1/check", {"colour": "red"}, {"image_url": data_url}, "colour"),
            ("/v1/moderations", {"colour": "red"}, {"input": "hi"}, "colour"),
            ("/v1/moderations", {}, {"input": "hi", "user": "u1"}, "user"),
            ("/v1/moderations", {}, {"input": [{"type": "text", "text": "a", "x": 1}]}, "input"),
            ("/v1/check", {}, {"image_url": data_url, "detail": "high"}, "image_url"),
        ]
        for path, q, js, param in refusals:
            async with s.post(f"{base}{path}", params=q, json=js, headers=auth) as r:
                body = await r.json()
            assert r.status == 400, (path, q, js, body)
            _holds(doc, "OpenAIError", body)
            assert body["error"]["param"] == param, body


def test_the_check_api_service_serves_its_api_and_its_metrics_where_registered(
    make_settings, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """`framewatch check-api` as `up`, compose and k8s run it (the registered service): the API
    on scoring.http_port, /metrics (its liveness probe and Prometheus job) on
    metrics.check_api_port, and with metrics.port_dir the port file under its own name."""
    import urllib.request

    from framewatch.local import free_port
    from framewatch.metrics import served_port
    from framewatch.services import service
    from tests.security.servers import serve

    svc = service("check-api")
    s = make_settings(scoring={"models": ["opennsfw"], "providers": ["CPUExecutionProvider"]},
                      metrics={"enabled": True})  # fmt: skip
    mport = free_port()
    env = {"FRAMEWATCH_METRICS__CHECK_API_PORT": str(mport)}
    with serve(s, *svc.args, port_env="FRAMEWATCH_SCORING__HTTP_PORT", log=tmp_path / "a.log",
               **env) as (base, _p):  # fmt: skip
        with urllib.request.urlopen(f"{base}/openapi.json", timeout=10) as r:
            assert r.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}{svc.health_path}", timeout=10) as r:
            page = r.read().decode()
        assert (
            "framewatch_check_parts_total" in page and 'framewatch_up{stage="scoring"} 1.0' in page
        )
    env = {"FRAMEWATCH_METRICS__PORT_DIR": str(tmp_path / "ports")}
    with serve(s, *svc.args, port_env="FRAMEWATCH_SCORING__HTTP_PORT", log=tmp_path / "b.log",
               **env) as (base, _p):  # fmt: skip
        port = served_port(tmp_path / "ports", svc.name)  # as the fault suite finds it
        assert port is not None
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            assert "framewatch_check_requests_in_flight" in r.read().decode()


@pytest.mark.parametrize("path", ["/v1/check", "/v1/moderations"])
async def test_a_trickled_body_gets_408_and_the_connection_closes(  # type: ignore[no-untyped-def]
    make_settings, scorer, path: str
) -> None:
    s_ = make_settings(scoring={"check_body_timeout_s": 1.0})
    async with check_api(s_, scorer) as (base, auth):
        port = int(base.rsplit(":", 1)[1])
        kind = "image/png" if path == "/v1/check" else "application/json"
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {auth['Authorization']}\r\nContent-Type: {kind}\r\n"
        )
        answer = await trickle(port, head, 100_000)  # returns once the server hung up
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line.startswith(b"HTTP/1.1 408"), answer[:200]
        body = json.loads(rest.partition(b"\r\n\r\n")[2])["error"]
        assert body["code"] == "body_timeout" and "1 s" in body["message"]
        async with (  # the API serves the next client as before
            aiohttp.ClientSession() as s,
            s.post(f"{base}/v1/moderations", json={"input": "x"}, headers=auth) as r,
        ):
            assert r.status == 200
