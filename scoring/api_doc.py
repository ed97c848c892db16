"""The check API's requests and answers as models, and its OpenAPI document (``/openapi.json``)
generated from them.

The handlers validate the query (``CheckQuery``) and the JSON bodies (``CheckUrl``,
``openai_compat.ModerationRequest``) with these same models, so a parameter or field is accepted
exactly when the document lists it. The answers are documented strictly (no undocumented field);
tests hold real answers to that.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from framewatch import httpapi, records
from framewatch.fields import CategoryPath
from scoring.openai_compat import CATEGORIES, ModerationRequest

Action = Literal["allow", "review", "block"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CheckQuery(_Strict):
    """The query parameters of both endpoints."""

    channel: str | None = Field(
        None, description="decide with this channel's policy files (e.g. kids)"
    )
    tenant: str | None = Field(
        None,
        description="the tenant, only when scoring.check_require_api_key is false (otherwise "
        "the key's tenant, or left out)",
    )


class CheckUrl(_Strict):
    """The JSON body of ``POST /v1/check`` (instead of image bytes)."""

    image_url: str = Field(min_length=1, description="https:// or data: URL")


class OpenAIErrorBody(_Strict):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIError(_Strict):
    """OpenAI's error shape, on both endpoints."""

    error: OpenAIErrorBody


class PolicyRef(_Strict):
    version: str
    tenant: str | None
    channel: str | None


class CheckReason(_Strict):
    category: CategoryPath
    score: float
    verdict: Literal["none", "review", "block"]
    why: str
    rule: str


class CheckResult(_Strict):
    """Everything the live scorer finds in one image, and the policy's decision on it."""

    scores: dict[str, float]
    models: dict[str, str]
    hash_matches: list[records.HashMatch]
    text: list[records.TextFinding]
    pdq: str
    pdq_quality: int
    decision: Action
    rationale: str
    red_line: bool
    reasons: list[CheckReason]
    policy: PolicyRef
    detections: list[records.Detection]


class PartResult(_Strict):
    """One part of a moderation input: an image part has the image fields too."""

    type: Literal["text", "image"]
    scores: dict[str, float]
    models: dict[str, str] | None = None
    hash_matches: list[records.HashMatch]
    text: list[records.TextFinding]
    pdq: str | None = None
    pdq_quality: int | None = None
    decision: Action
    rationale: str
    red_line: bool
    reasons: list[CheckReason]
    policy: PolicyRef
    detections: list[records.Detection] | None = None


class Ours(_Strict):
    """framewatch's own fields of a moderation result."""

    decision: Action
    rationale: str
    red_line: bool
    scores: dict[str, float]
    hash_matches: list[records.HashMatch]
    policy: PolicyRef
    parts: list[PartResult]


def _per_category(name: str, kind: Any) -> type[BaseModel]:
    """A model with one required field per OpenAI category (names such as ``self-harm/intent``
    are aliases)."""
    fields: dict[str, Any] = {
        n.replace("/", "_").replace("-", "_"): (kind, Field(alias=n)) for n in CATEGORIES
    }
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


Categories = _per_category("Categories", bool)
CategoryScores = _per_category("CategoryScores", float)
AppliedInputTypes = _per_category("AppliedInputTypes", list[Literal["text", "image"]])


class ModerationResult(_Strict):
    flagged: bool = Field(description="true exactly when a category is")
    categories: Categories  # type: ignore[valid-type]
    category_scores: CategoryScores  # type: ignore[valid-type]
    category_applied_input_types: AppliedInputTypes  # type: ignore[valid-type]
    framewatch: Ours


class ModerationResponse(_Strict):
    """One result per input (a list of parts is one input)."""

    id: str
    model: str
    results: list[ModerationResult]


MODELS = (CheckUrl, ModerationRequest, CheckResult, ModerationResponse, OpenAIError)
_COMMON = {
    "401": "missing or unknown API key",
    "408": "the body did not arrive within scoring.check_body_timeout_s (then the connection "
    "is closed)",
    "413": "body over scoring.check_max_request_bytes",
    "429": "this key has too many requests or bytes in flight",
}

CHECK_ERRORS = {
    "400": "bad request or image URL refused",
    **_COMMON,
    "422": "the image could not be decoded, or is over scoring.max_image_pixels",
}
MODERATION_ERRORS = {"400": "bad input, undecodable image or refused URL", **_COMMON}  # fmt: skip


def _errors(codes: dict[str, str]) -> dict[str, Any]:
    return {c: {"description": d, "content": httpapi.json_content(OpenAIError)}
            for c, d in codes.items()}  # fmt: skip


def _ok(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"200": {"description": description, "content": httpapi.json_content(model)}}


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document: parameters and schemas generated from the models above."""
    image = {"schema": {"type": "string", "format": "binary"}}
    query = httpapi.query_parameters(CheckQuery)
    check_body = {t: image for t in ("image/jpeg", "image/png", "image/webp",
                                     "application/octet-stream")}  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {"title": "framewatch check API", "version": "1"},
        "security": [{"apiKey": []}],
        "paths": {
            "/v1/check": {
                "post": {
                    "summary": "check one image now with the live detectors and policy",
                    "parameters": query,
                    "requestBody": {
                        "required": True,
                        "content": {**check_body, **httpapi.json_content(CheckUrl)},
                    },
                    "responses": _ok(CheckResult, "scores, hash matches and the decision")
                    | _errors(CHECK_ERRORS),
                }
            },
            "/v1/moderations": {
                "post": {
                    "summary": "OpenAI-compatible moderation (omni-moderation's answer shape)",
                    "parameters": query,
                    "requestBody": {
                        "required": True,
                        "content": httpapi.json_content(ModerationRequest),
                    },
                    "responses": _ok(ModerationResponse, "one result per input")
                    | _errors(MODERATION_ERRORS),
                }
            },
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "schemas": httpapi.component_schemas(*MODELS),
        },
    }
