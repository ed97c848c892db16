"""The HTTP push API on a real aiohttp server, real Redis keys and the real broker."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import numpy as np
import pytest
from PIL import Image

from framewatch import apikeys, records, redisio
from framewatch.settings import Settings
from tests.ingest.helpers import consume, push_server

pytestmark = pytest.mark.timeout(60)


@dataclass
class Api:
    url: str
    key: str
    settings: Settings


@pytest.fixture
async def api(settings: Settings, kafka_topics: object) -> AsyncIterator[Api]:
    key = apikeys.create(settings, redisio.sync_client(settings), "tenant-a")
    async with push_server(settings) as url:
        yield Api(url, key, settings)


def jpeg(w: int = 640, h: int = 480, exif_rotate: bool = False) -> bytes:
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    buf = io.BytesIO()
    if exif_rotate:
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 CW on display
        img.save(buf, "JPEG", exif=exif)
    else:
        img.save(buf, "JPEG")
    return buf.getvalue()


def huge_png(w: int, h: int) -> bytes:
    """A valid PNG header claiming w x h pixels with a tiny compressed body (a bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    row = b"\0" + b"\0" * w
    idat = zlib.compress(row * 64, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


async def post(api: Api, body: bytes, key: str | None = None, **params: str) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {key or api.key}", "Content-Type": "image/jpeg"}
    params = {"account_id": "acct-9", **params}
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{api.url}/v1/streams/cam-1/frames", data=body, headers=headers, params=params
        ) as r,
    ):
        return r.status, await r.json()


async def test_good_jpeg_is_accepted_and_lands_on_the_topic(api: Api) -> None:
    status, body = await post(api, jpeg(), captured_at="1700000000.5")
    assert status == 202, body
    status2, body2 = await post(api, jpeg(320, 240))
    assert status2 == 202
    frames = await consume(api.settings, "frames", 2)
    assert [f.frame_id for f in frames] == [body["frame_id"], body2["frame_id"]]
    f = frames[0]
    assert isinstance(f, records.Frame)
    assert (f.stream_id, f.account_id, f.tenant, f.sample_reason) == (
        "cam-1",
        "acct-9",
        "tenant-a",
        "push",
    )
    assert f.captured_at == 1700000000.5 and f.seq == 0 and frames[1].seq == 1
    assert f.pdq and f.pdq_quality is not None
    assert min(Image.open(io.BytesIO(f.jpeg)).size) == 384


async def test_a_new_session_marks_a_new_life_of_the_pushed_stream(api: Api) -> None:
    same = jpeg()
    first, retry = await post(api, same, session="life-1"), await post(api, same, session="life-1")
    assert first[0] == retry[0] == 202 and first[1]["frame_id"] == retry[1]["frame_id"]
    again = await post(api, same, session="life-2")  # the same picture in the next life
    assert again[0] == 202 and again[1]["frame_id"] != first[1]["frame_id"]
    assert (await post(api, jpeg(200, 200)))[0] == 202
    status, body = await post(api, jpeg(100, 100), session="x" * 65)
    assert status == 400 and body["error"] == "bad_session"
    frames = await consume(api.settings, "frames", 4)
    assert [f.session for f in frames] == ["life-1", "life-1", "life-2", None]


async def test_exif_rotation_applied_and_exif_stripped(api: Api) -> None:
    status, _ = await post(api, jpeg(640, 480, exif_rotate=True))
    assert status == 202
    (f,) = await consume(api.settings, "frames", 1)
    assert (f.width, f.height) == (480, 640)  # portrait after applying the rotation
    assert not Image.open(io.BytesIO(f.jpeg)).getexif()


async def test_bad_or_missing_key_is_401(api: Api) -> None:
    status, body = await post(api, jpeg(), key="fwk_wrong")
    assert status == 401 and body["error"] == "unauthorized"
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{api.url}/v1/streams/cam-1/frames?account_id=a", data=jpeg()) as r,
    ):
        assert r.status == 401 and "Bearer" in (await r.json())["message"]


async def test_decompression_bomb_png_refused(api: Api) -> None:
    status, body = await post(api, huge_png(20000, 20000))
    assert status == 413 and body["error"] == "too_many_pixels"
    assert "400000000 pixels" in body["message"] and "40000000" in body["message"]


async def test_non_image_body_is_415_whatever_the_header_says(api: Api) -> None:
    status, body = await post(api, b"%PDF-1.4 not an image" * 10)
    assert status == 415 and body["error"] == "unsupported_media_type"


async def test_missing_account_id_is_400(api: Api) -> None:
    async with aiohttp.ClientSession() as s, s.post(
        f"{api.url}/v1/streams/cam-1/frames", data=jpeg(),
        headers={"Authorization": f"Bearer {api.key}"},
    ) as r:  # fmt: skip
        assert r.status == 400 and (await r.json())["error"] == "missing_account_id"


async def test_multipart_upload_and_openapi(api: Api) -> None:
    form = aiohttp.FormData()
    form.add_field("frame", jpeg(), filename="f.jpg", content_type="application/octet-stream")
    async with aiohttp.ClientSession() as s:
        async with s.post(
            f"{api.url}/v1/streams/cam-1/frames?account_id=a", data=form,
            headers={"Authorization": f"Bearer {api.key}"},
        ) as r:  # fmt: skip
            assert r.status == 202
        async with s.get(f"{api.url}/openapi.json") as r:
            doc = await r.json()
    assert "/v1/streams/{stream_id}/frames" in doc["paths"]
    assert doc["openapi"].startswith("3.")


async def test_the_served_document_lists_exactly_the_query_parameters_accepted(api: Api) -> None:
    """The push API's OpenAPI document is valid, each query parameter it lists is taken (a
    frame is stored with it), and a parameter it does not list is refused, not ignored."""
    from openapi_spec_validator import validate

    examples = {"account_id": "acct-9", "captured_at": "1700000000.5", "channel": "kids",
                "session": "life-2"}  # fmt: skip
    auth = {"Authorization": f"Bearer {api.key}"}
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{api.url}/openapi.json") as r:
            doc = await r.json()
        validate(doc)
        op = doc["paths"]["/v1/streams/{stream_id}/frames"]["post"]
        documented = {p["name"] for p in op["parameters"] if p["in"] == "query"}
        assert documented == set(examples), "a parameter is missing from the document or new"
        async with s.post(f"{api.url}/v1/streams/cam-q/frames", params=examples,
                          data=jpeg(320, 240), headers=auth) as r:  # fmt: skip
            assert r.status == 202, await r.text()
        for extra in ("colour", "accountId", "tenant"):  # not documented: refused, not ignored
            async with s.post(f"{api.url}/v1/streams/cam-q/frames",
                              params={"account_id": "a", extra: "x"}, data=jpeg(320, 240),
                              headers=auth) as r:  # fmt: skip
                body = await r.json()
            assert r.status == 400 and body["error"] == "unknown_parameter", body
            assert extra in body["message"] and "account_id" in body["message"]
    (frame,) = await consume(api.settings, "frames", 1)
    assert (frame.account_id, frame.channel, frame.session) == ("acct-9", "kids", "life-2")
    assert frame.captured_at == 1700000000.5


async def test_bad_pushes_lose_nothing_for_good_ones(api: Api) -> None:
    results = [
        await post(api, b) for b in (jpeg(), b"junk", huge_png(20000, 20000), jpeg(300, 300))
    ]
    assert [s for s, _ in results] == [202, 415, 413, 202]
    frames = await consume(api.settings, "frames", 2)
    assert [f.frame_id for f in frames] == [results[0][1]["frame_id"], results[3][1]["frame_id"]]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"source": "rtmp://93.184.215.14/live/k"}', "account_id: Field required"),
        (b'{"source": "rtmp://93.184.215.14/live/k", "account_id": "a", "fps": true}', "fps"),
        (b'{"source": "rtmp://93.184.215.14/live/k", "account_id": "a", "fps": 61}', "fps"),
        (b'{"source": "", "account_id": "a"}', "source"),
        (b'{"source": "x", "account_id": "a", "typo": 1}', "typo: Extra inputs"),
        (b"[1, 2]", "the body: Input should be an object"),
        (b"not json", "Invalid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "recursion limit"),
    ],
)
async def test_bad_source_bodies_are_400_naming_the_field(
    api: Api, body: bytes, words: str
) -> None:
    """The body model (ingest/sources_api.SourceRequest) validates and documents the API."""
    headers = {"Authorization": f"Bearer {api.key}", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as s,
        s.put(f"{api.url}/v1/sources/cam-src", data=body, headers=headers) as r,
    ):
        got = await r.json()
    assert r.status == 400 and got["error"] == "bad_request" and words in got["message"], got
