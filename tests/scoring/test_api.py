"""The check API over real HTTP: /v1/check, OpenAI-compatible /v1/moderations, URL safety."""

from __future__ import annotations

import base64

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from scoring.api import app
from scoring.banks import BankStore, with_crops
from scoring.scorer import Scorer
from tests.scoring.conftest import frames, jpeg


@pytest.fixture(scope="module")
def scorer(builtin_models) -> Scorer:  # type: ignore[no-untyped-def]
    return Scorer(builtin_models[:1])


async def _server(settings, scorer):  # type: ignore[no-untyped-def]
    srv = TestServer(app(settings, scorer))
    await srv.start_server()
    return srv


async def test_check_scores_decides_and_matches_banks(settings, scorer) -> None:  # type: ignore[no-untyped-def]
    chair = frames("chair-orig-22-sd-bar.mp4", count=1)[0]
    srv = await _server(settings, scorer)
    try:
        async with aiohttp.ClientSession() as s:
            async with s.post(srv.make_url("/v1/check"), data=jpeg(chair),
                              headers={"Content-Type": "image/jpeg"}) as r:  # fmt: skip
                body = await r.json()
            assert r.status == 200, body
            assert body["decision"] == "allow" and "< review threshold" in body["rationale"]
            assert body["models"]["sexual"] == "opennsfw@0.1.0" and body["hash_matches"] == []
            store = BankStore(settings)
            store.create("terror", "red_line", "known_bad.terror_bank")
            store.add("terror", "chair.jpg", with_crops(chair, [0.05]), "image")
            async with s.post(srv.make_url("/v1/check"), data=jpeg(chair, 60)) as r:
                body = await r.json()
            assert body["decision"] == "block", body
            assert body["hash_matches"][0]["category"] == "known_bad.terror_bank"
            async with s.post(srv.make_url("/v1/check"), data=b"not an image") as r:
                assert r.status == 422
                assert "decode" in (await r.json())["error"]["message"]
    finally:
        await srv.close()


async def test_moderations_is_openai_shaped_and_refuses_private_urls(make_settings, scorer) -> None:  # type: ignore[no-untyped-def]
    img = jpeg(frames("pattern-hd-no-bar.mp4", count=1)[0][::4, ::4])
    # a real HTTP server holding the image, on loopback
    files = web.Application()
    files.router.add_get("/img.jpg", lambda _r: web.Response(body=img, content_type="image/jpeg"))
    fsrv = TestServer(files)
    await fsrv.start_server()
    strict = await _server(make_settings(), scorer)
    lax = await _server(make_settings(scoring={"allow_private_urls": True}), scorer)
    data_url = "data:image/jpeg;base64," + base64.b64encode(img).decode()
    try:
        async with aiohttp.ClientSession() as s:
            req = {"input": [{"type": "image_url", "image_url": {"url": data_url}},
                             {"type": "text", "text": "DM me on telegram"}]}  # fmt: skip
            async with s.post(strict.make_url("/v1/moderations"), json=req) as r:
                body = await r.json()
            assert r.status == 200, body
            pic, words = body["results"]
            assert pic["flagged"] is False and set(pic["categories"]) >= {
                "sexual",
                "violence/graphic",
            }
            assert 0 <= pic["category_scores"]["sexual"] < 0.5
            assert words["flagged"] is True
            assert "spam.solicitation" in words["framewatch"]["scores"]
            url = str(fsrv.make_url("/img.jpg"))
            req = {"input": [{"type": "image_url", "image_url": {"url": url}}]}
            async with s.post(strict.make_url("/v1/moderations"), json=req) as r:
                assert r.status == 400
                assert "private address" in (await r.json())["error"]["message"]
            async with s.post(lax.make_url("/v1/moderations"), json=req) as r:
                assert r.status == 200
                assert (await r.json())["results"][0]["framewatch"]["decision"] == "allow"
    finally:
        for srv in (strict, lax, fsrv):
            await srv.close()
