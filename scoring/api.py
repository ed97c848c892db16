"""Synchronous check API (aiohttp): POST /v1/check and OpenAI-compatible POST /v1/moderations."""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
import socket
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from framewatch import netguard
from framewatch.errors import FramewatchError
from framewatch.settings import Settings
from scoring import pdq, text
from scoring.api_doc import openapi
from scoring.banks import BankIndex, BankStore
from scoring.model import decode_image
from scoring.scorer import Scorer

log = logging.getLogger(__name__)

# OpenAI moderation category -> our taxonomy prefixes (max of matching scores)
OPENAI = {
    "sexual": ("sexual", "suggestive.covered"),
    "sexual/minors": ("child_safety",),
    "violence": ("violence",),
    "violence/graphic": ("violence.gore",),
    "hate": ("hate",),
    "self-harm": ("self_harm",),
    "illicit": ("drugs",),
}


class UrlRefused(FramewatchError):
    """An image URL we will not fetch (scheme, private address, size)."""


def decide(scores: dict[str, float], block: float, review: float) -> tuple[str, str]:
    """Decision under the default threshold table, with a one-line rationale."""
    if not scores:
        return "allow", "no scores"
    path, top = max(scores.items(), key=lambda kv: kv[1])
    if top >= block:
        return "block", f"{path} {top:.2f} >= block threshold {block}"
    if top >= review:
        return "review", f"{path} {top:.2f} >= review threshold {review}"
    return "allow", f"highest {path} {top:.2f} < review threshold {review}"


async def fetch_image(url: str, settings: Settings) -> bytes:
    """http(s) or data: URL -> bytes; private/loopback hosts refused unless allowed."""
    sc = settings.scoring
    if url.startswith("data:"):
        try:
            head, data = url.split(",", 1)
            raw = base64.b64decode(data, validate=True) if ";base64" in head else data.encode()
        except (ValueError, binascii.Error):
            raise UrlRefused("data: URL is not valid base64") from None
        if len(raw) > sc.max_image_bytes:
            raise UrlRefused(f"image larger than {sc.max_image_bytes} bytes")
        return raw
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as e:  # e.g. a bad IPv6 literal or port
        raise UrlRefused(f"not a valid URL ({e})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise UrlRefused(f"only http(s) and data: image URLs are fetched, not {url[:60]!r}")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port or 80,
                                                             type=socket.SOCK_STREAM)  # fmt: skip
    except (OSError, UnicodeError, ValueError) as e:
        raise UrlRefused(f"cannot resolve {host[:80]!r} ({e}); check the URL") from None
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not sc.allow_private_urls and netguard.is_internal(ip):  # the one project-wide rule
            raise UrlRefused(
                f"{parts.hostname} resolves to {ip}, a private address; set "
                "scoring.allow_private_urls to fetch it"
            )
    timeout = aiohttp.ClientTimeout(total=sc.image_fetch_timeout_s)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as s,
            s.get(url, allow_redirects=False) as r,
        ):
            if r.status != 200:
                raise UrlRefused(f"fetching {url[:80]} gave HTTP {r.status}")
            body = await r.content.read(sc.max_image_bytes + 1)
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as e:
        raise UrlRefused(f"fetching {url[:80]} failed ({type(e).__name__}: {e})") from None
    if len(body) > sc.max_image_bytes:
        raise UrlRefused(f"image larger than {sc.max_image_bytes} bytes")
    return body


class CheckApi:
    def __init__(self, settings: Settings, scorer: Scorer) -> None:
        self.s = settings
        self.scorer = scorer
        self.store = BankStore(settings)
        self.index = BankIndex.empty()

    def _check(self, data: bytes) -> dict[str, Any]:
        img = decode_image(data, self.s.scoring.max_image_pixels)
        h, q = pdq.compute_still(img)
        scored = self.scorer.score([img], [q])[0]
        hits = self.index.match(h)
        codes = text.find_codes(img)
        scores = {**scored.scores, **text.spam_scores(codes, self.s.scoring.text_score)}
        matches = [{"bank": x.bank.name, "entry_id": x.entry_id, "distance": x.distance,
                    "threshold": x.bank.threshold, "role": x.bank.role,
                    "category": x.bank.category} for x in hits]  # fmt: skip
        sc = self.s.scoring
        action, why = decide(scores, sc.block_threshold, sc.review_threshold)
        red = [m for m in matches if m["role"] == "red_line"]
        if red:
            action, why = "block", f"hash match {red[0]['bank']}/{red[0]['entry_id']} (red line)"
        elif matches and action == "allow":
            action, why = "review", f"hash match {matches[0]['bank']}/{matches[0]['entry_id']}"
        return {"scores": scores, "models": scored.models, "hash_matches": matches,
                "text": [c.model_dump() for c in codes], "pdq": h, "pdq_quality": q,
                "decision": action, "rationale": why,
                "detections": [d.model_dump() for d in scored.detections]}  # fmt: skip

    async def _score(self, data: bytes) -> dict[str, Any]:
        self.index = await asyncio.get_running_loop().run_in_executor(None, self.store.load)
        return await asyncio.get_running_loop().run_in_executor(None, self._check, data)

    async def check(self, req: web.Request) -> web.Response:
        try:
            if req.content_type == "application/json":
                try:
                    body = await req.json()
                except ValueError:
                    return _err(400, 'body is not JSON; send image bytes, or {"image_url": ...}')
                url = body.get("image_url") if isinstance(body, dict) else None
                if not url or not isinstance(url, str):
                    return _err(400, 'send image bytes, or JSON {"image_url": "https://..."}')
                data = await fetch_image(url, self.s)
            else:
                data = await req.read()
            return web.json_response(await self._score(data))
        except web.HTTPRequestEntityTooLarge:
            return _err(413, f"body over {self.s.scoring.max_image_bytes} bytes; send less")
        except FramewatchError as e:
            return _err(422 if not isinstance(e, UrlRefused) else 400, str(e))

    async def moderations(self, req: web.Request) -> web.Response:
        try:
            body = await req.json()
        except web.HTTPRequestEntityTooLarge:
            return _err(413, f"body over {self.s.scoring.max_image_bytes} bytes; send less")
        except ValueError:
            return _err(400, "body must be JSON with an 'input'")
        inputs = body.get("input") if isinstance(body, dict) else None
        if isinstance(inputs, str | dict):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            return _err(400, "'input' must be a string, or a list of text / image_url parts")
        results = []
        try:
            for part in inputs:
                results.append(await self._moderate(part))
        except FramewatchError as e:
            return _err(400, str(e))
        return web.json_response({"id": f"modr-{id(req):x}", "model": self.scorer.model_set,
                                  "results": results})  # fmt: skip

    async def _moderate(self, part: Any) -> dict[str, Any]:
        ours: dict[str, Any]
        if isinstance(part, str) or (isinstance(part, dict) and part.get("type") == "text"):
            line = part if isinstance(part, str) else str(part.get("text", ""))
            found = text.rules(line, [])
            ours = {"scores": text.spam_scores(found, self.s.scoring.text_score),
                    "text": [f.model_dump() for f in found if f.category]}  # fmt: skip
        elif isinstance(part, dict) and part.get("type") == "image_url":
            iu = part.get("image_url")
            url = iu.get("url") if isinstance(iu, dict) else iu
            if not isinstance(url, str):
                raise UrlRefused("image_url needs a url")
            ours = await self._score(await fetch_image(url, self.s))
        else:
            raise UrlRefused("each input part must be a string, {type: text} or {type: image_url}")
        scores: dict[str, float] = ours["scores"]
        cat_scores = {k: max([v for p, v in scores.items() if p.startswith(pre)] or [0.0])
                      for k, pre in OPENAI.items()}  # fmt: skip
        thr = self.s.scoring.review_threshold
        cats = {k: v >= thr for k, v in cat_scores.items()}
        flagged = (
            any(cats.values())
            or bool(ours.get("hash_matches"))
            or any(v >= thr for v in scores.values())
        )
        return {"flagged": flagged, "categories": cats, "category_scores": cat_scores,
                "framewatch": ours}  # fmt: skip


def _err(status: int, msg: str) -> web.Response:
    return web.json_response({"error": {"message": msg}}, status=status)


def app(settings: Settings, scorer: Scorer) -> web.Application:
    api = CheckApi(settings, scorer)
    a = web.Application(client_max_size=settings.scoring.max_image_bytes + 65536)
    a.router.add_post("/v1/check", api.check)
    a.router.add_post("/v1/moderations", api.moderations)
    doc = openapi()
    a.router.add_get("/openapi.json", lambda _r: web.json_response(doc))
    return a
