"""The official `openai` SDK against the real check API: its own types, validated strictly."""

from __future__ import annotations

import base64
from pathlib import Path

import aiohttp
import openai
import pytest
from openai.types import ModerationCreateResponse

from framewatch.settings import Settings
from scoring.openai_compat import CATEGORIES
from scoring.scorer import Scorer
from tests.scoring.conftest import check_api, frames, jpeg

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
# tenant-a flags even a faint 'sexual' score, so a flagged image answer is covered too
TOUCHY = "scope: {tenant: tenant-a}\nrules:\n  sexual: {review: 0.0001, block: 0.99}\n"


@pytest.fixture(scope="module")
def scorer(builtin_models) -> Scorer:  # type: ignore[no-untyped-def]
    return Scorer(builtin_models[:1])


@pytest.fixture
def settings_(make_settings, tmp_path: Path) -> Settings:  # type: ignore[no-untyped-def]
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "touchy.yaml").write_text(TOUCHY)
    return make_settings(streams={"policy_dir": tmp_path / "p"}, scoring={"text_every": 0})


def client(base: str, auth: dict[str, str] | None) -> openai.AsyncOpenAI:
    key = auth["Authorization"][7:] if auth else "fwk_not-a-key"
    return openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=120)


def strict(raw: dict) -> ModerationCreateResponse:
    """The SDK's own response type, strictly: every field present with its exact type."""
    out = ModerationCreateResponse.model_validate(raw, strict=True)
    for r, res in zip(raw["results"], out.results, strict=True):
        assert set(r["categories"]) == set(r["category_scores"]) == set(CATEGORIES)
        assert len(CATEGORIES) == 13
        assert set(r["category_applied_input_types"]) == set(CATEGORIES)
        assert res.flagged == any(r["categories"].values())  # flagged iff some category
        assert "framewatch" in r and set(r) == {
            "flagged",
            "categories",
            "category_scores",
            "category_applied_input_types",
            "framewatch",
        }
    return out


async def test_sdk_validates_every_answer_strictly(settings_, scorer) -> None:  # type: ignore[no-untyped-def]
    img = jpeg(frames("chair-orig-22-sd-bar.mp4", count=1)[0])
    data_url = "data:image/jpeg;base64," + base64.b64encode(img).decode()
    image = {"type": "image_url", "image_url": {"url": data_url}}
    text = {"type": "text", "text": "DM me on telegram"}
    async with check_api(settings_, scorer) as (base, auth), aiohttp.ClientSession() as s:
        answers = {}
        for name, inp in (("text", "DM me on telegram"), ("image", [image]),
                          ("mixed", [image, text]), ("many", ["one", "two", "DM me"])):  # fmt: skip
            async with s.post(f"{base}/v1/moderations", json={"input": inp}, headers=auth) as r:
                assert r.status == 200, await r.text()
                answers[name] = strict(await r.json())
        assert [len(answers[n].results) for n in ("text", "image", "mixed", "many")] == [1, 1, 1, 3]
        t, i, m = (answers[n].results[0] for n in ("text", "image", "mixed"))
        # which input types each score came from, as OpenAI reports them
        assert t.category_applied_input_types.sexual == ["text"]
        assert i.category_applied_input_types.sexual == ["image"]
        assert i.category_applied_input_types.hate == []  # OpenAI scores hate on text only
        assert m.category_applied_input_types.sexual == ["text", "image"]
        assert m.category_applied_input_types.violence_graphic == ["text", "image"]
        # the image is flagged for tenant-a's touchy policy: one combined result for the pair
        assert i.flagged and i.categories.sexual and m.flagged and m.categories.sexual
        assert i.category_scores.sexual == m.category_scores.sexual > 0
        assert m.model_extra["framewatch"]["decision"] == "review"
        assert [p["type"] for p in m.model_extra["framewatch"]["parts"]] == ["image", "text"]
        # the spam text is our policy's review, not an OpenAI category: flagged stays false
        assert not t.flagged and t.model_extra["framewatch"]["decision"] == "review"
        # and through the SDK's own call
        c = client(base, auth)
        got = await c.moderations.create(input=[image, text], model="omni-moderation-latest")
        assert isinstance(got, ModerationCreateResponse) and len(got.results) == 1
        assert got.results[0].categories.sexual is True
        assert got.results[0].category_applied_input_types.self_harm == ["text", "image"]
        got = await c.moderations.create(input=["a", "b"])
        assert len(got.results) == 2 and not any(r.flagged for r in got.results)
        await c.close()


async def test_sdk_raises_its_own_errors_with_our_messages(settings_, scorer) -> None:  # type: ignore[no-untyped-def]
    async with check_api(settings_, scorer) as (base, auth):
        c = client(base, auth)
        with pytest.raises(openai.AuthenticationError) as e:
            await client(base, None).moderations.create(input="hi")
        assert "unknown API key" in e.value.message and e.value.code == "invalid_api_key"
        cases = [
            ([{"type": "text", "text": "a"}, "b"], "not a mix", "input"),
            ([{"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/x.jpg"}}],
             "address not allowed", "input"),
            (["x"] * 9, "at most 8", "input"),
            ([{"type": "video", "video": "x"}], "must be", "input[0]"),
        ]  # fmt: skip
        for inp, message, param in cases:
            with pytest.raises(openai.BadRequestError) as e:
                await c.moderations.create(input=inp)  # type: ignore[arg-type]
            assert message in e.value.message and e.value.param == param, e.value.body
            assert e.value.type == "invalid_request_error" and e.value.body["code"]
        bad = {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,bm90IGFuIGltYWdl"}}
        with pytest.raises(openai.BadRequestError, match="decode"):
            await c.moderations.create(input=[bad])
        await c.close()
