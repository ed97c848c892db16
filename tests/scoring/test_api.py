"""The check API over real HTTP: /v1/check decides with the live detectors and policy."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import aiohttp
import pytest

from framewatch import records
from framewatch.settings import Settings, to_env
from scoring.banks import BankStore, with_crops
from scoring.scorer import Scorer
from streams.policy import load_dir
from streams.state import StreamState, step
from tests.scoring.conftest import check_api, frames, jpeg, overlay

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
KIDS_POLICY = """
scope: {tenant: acme, channel: kids}
rules:
  spam: {review: 0.5, block: 0.8, smoothing: {k: 2, n: 3}}
"""


@pytest.fixture(scope="module")
def scorer(builtin_models) -> Scorer:  # type: ignore[no-untyped-def]
    return Scorer(builtin_models[:1])


async def test_check_scores_decides_and_matches_banks(settings, scorer) -> None:  # type: ignore[no-untyped-def]
    chair = frames("chair-orig-22-sd-bar.mp4", count=1)[0]
    async with check_api(settings, scorer) as (base, auth), aiohttp.ClientSession() as s:
        async with s.post(f"{base}/v1/check", data=jpeg(chair),
                          headers={**auth, "Content-Type": "image/jpeg"}) as r:  # fmt: skip
            body = await r.json()
        assert r.status == 200, body
        assert body["decision"] == "allow" and "below review" in body["rationale"]
        assert body["models"]["sexual"] == "opennsfw@0.1.0" and body["hash_matches"] == []
        assert body["policy"]["tenant"] == "tenant-a"
        store = BankStore(settings)
        store.create("terror", "red_line", "known_bad.terror_bank")
        store.add("terror", "chair.jpg", with_crops(chair, [0.05]), "image")
        store.notify()  # the API's bank watch reloads its index (no Redis read per request)
        for _ in range(100):
            async with s.post(f"{base}/v1/check", data=jpeg(chair, 60), headers=auth) as r:
                body = await r.json()
            if body["hash_matches"]:
                break
            await asyncio.sleep(0.1)
        assert body["decision"] == "block" and body["red_line"] is True, body
        assert body["hash_matches"][0]["category"] == "known_bad.terror_bank"
        async with s.post(f"{base}/v1/check", data=b"not an image", headers=auth) as r:
            assert r.status == 422
            assert "decode" in (await r.json())["error"]["message"]


def live_decision(scores: dict[str, float], policy_dir: Path, channel: str | None) -> str:
    """What the streams worker decides on a stream showing this image (5 frames, 1 s apart)."""
    from framewatch import taxonomy

    policy = load_dir(policy_dir, taxonomy.load())
    st, action = StreamState(), "allow"
    for i in range(5):
        sc = records.Scores(frame_id=f"f{i}", stream_id="s1", account_id="a1", tenant="acme",
                            channel=channel, seq=i, captured_at=1000.0 + i, scored_at=1000.0 + i,
                            scores=scores)  # fmt: skip
        out = step(st, sc, policy, decided_at=2000.0)
        st = out.state
        if out.decision is not None:
            action = out.decision.action
    return action


async def test_check_api_and_cli_decide_as_the_live_policy_with_text_overlays(
    make_settings, scorer, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """One decision engine: the tenant's and channel's policy, OCR included, in all three."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "acme-kids.yaml").write_text(KIDS_POLICY)
    settings: Settings = make_settings(streams={"policy_dir": policies},
                                       scoring={"providers": ["CPUExecutionProvider"]})  # fmt: skip
    img = overlay(["DM me on telegram", "www.win-free.example"])
    picture = tmp_path / "overlay.jpg"
    picture.write_bytes(img)
    got: dict[str | None, dict] = {}
    api = check_api(settings, scorer, tenant="acme")
    async with api as (base, auth), aiohttp.ClientSession() as s:
        for channel in ("kids", None):
            q = f"?channel={channel}" if channel else ""
            async with s.post(f"{base}/v1/check{q}", data=img, headers=auth) as r:
                got[channel] = await r.json()
                assert r.status == 200, got[channel]
    kids, plain = got["kids"], got[None]
    # the live scorer's OCR + spam rules ran: the overlay's URL, handle and solicitation
    assert {"spam.url", "spam.messenger_handle", "spam.solicitation"} <= set(kids["scores"])
    assert {t["kind"] for t in kids["text"]} >= {"url", "handle", "solicitation"}
    # the tenant's kids channel blocks spam at 0.8; elsewhere the default reviews it
    assert kids["decision"] == "block" and "acme-kids.yaml:spam" in kids["rationale"]
    assert plain["decision"] == "review"
    assert kids["decision"] == live_decision(kids["scores"], policies, "kids")
    assert plain["decision"] == live_decision(plain["scores"], policies, None)
    # `framewatch check` decides the same, from the same files
    env = {**os.environ, **to_env(settings)}
    for args, want in ((["--tenant", "acme", "--channel", "kids"], "block"), ([], "review")):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "framewatch.cli", "check", "--json", *args, str(picture),
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 180)
        assert proc.returncode == 0, err.decode()
        assert json.loads(out)["decision"] == want, (args, out[:600])
