"""The OpenAPI document of the check API (served at ``/openapi.json``)."""

from __future__ import annotations

from typing import Any

from scoring.openai_compat import CATEGORIES

_NULLABLE_STR = {"type": ["string", "null"]}
# OpenAI's error shape, on both endpoints
_ERR = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["message", "type", "param", "code"],
                    "properties": {
                        "message": {"type": "string"},
                        "type": {"type": "string"},
                        "param": _NULLABLE_STR,
                        "code": _NULLABLE_STR,
                    },
                }
            },
        }
    }
}
_NAMES = list(CATEGORIES)
_SCORES = {"type": "object", "additionalProperties": {"type": "number"}}
_CHECK = {
    "type": "object",
    "required": ["scores", "models", "hash_matches", "text", "pdq", "pdq_quality", "decision",
                 "rationale", "red_line", "reasons", "policy", "detections"],
    "properties": {
        "scores": _SCORES,
        "models": {"type": "object", "additionalProperties": {"type": "string"}},
        "hash_matches": {"type": "array", "items": {"type": "object", "required": [
            "bank", "entry_id", "distance", "category", "role"]}},
        "text": {"type": "array", "items": {"type": "object"}},
        "pdq": {"type": "string"},
        "pdq_quality": {"type": "integer"},
        "decision": {"enum": ["allow", "review", "block"]},
        "rationale": {"type": "string"},
        "red_line": {"type": "boolean"},
        "reasons": {"type": "array", "items": {"type": "object"}},
        "policy": {"type": "object", "required": ["version"]},
        "detections": {"type": "array", "items": {"type": "object"}},
    },
}  # fmt: skip
_OBJ = {
    "oneOf": [
        {"type": "object", "required": ["type", "text"],
         "properties": {"type": {"const": "text"}, "text": {"type": "string"}}},
        {"type": "object", "required": ["type", "image_url"],
         "properties": {"type": {"const": "image_url"}, "image_url": {"oneOf": [
             {"type": "string"},
             {"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}},
         ]}}},
    ]
}  # fmt: skip
_RESULT = {
    "type": "object",
    "required": ["flagged", "categories", "category_scores", "category_applied_input_types",
                 "framewatch"],
    "properties": {
        "flagged": {"type": "boolean", "description": "true exactly when a category is"},
        "categories": {"type": "object", "required": _NAMES,
                       "properties": {n: {"type": "boolean"} for n in _NAMES}},
        "category_scores": {"type": "object", "required": _NAMES,
                            "properties": {n: {"type": "number"} for n in _NAMES}},
        "category_applied_input_types": {
            "type": "object", "required": _NAMES,
            "properties": {n: {"type": "array", "items": {"enum": list(types)}}
                           for n, (types, _) in CATEGORIES.items()},
        },
        "framewatch": {"type": "object", "required": ["decision", "scores", "policy", "parts"],
                       "properties": {"decision": {"enum": ["allow", "review", "block"]},
                                      "scores": _SCORES}},
    },
}  # fmt: skip
_AUTH = [{"apiKey": []}]
_QUERY = [
    {"name": "channel", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "decide with this channel's policy files (e.g. kids)"},
    {"name": "tenant", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "the tenant, only when scoring.check_require_api_key is false "
     "(otherwise the key's tenant, or left out)"},
]  # fmt: skip
_COMMON = {
    "401": {"description": "missing or unknown API key", "content": _ERR},
    "413": {"description": "body over scoring.check_max_request_bytes", "content": _ERR},
    "429": {"description": "this key has too many requests or bytes in flight", "content": _ERR},
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi() -> dict[str, Any]:
    image = {"schema": {"type": "string", "format": "binary"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "framewatch check API", "version": "1"},
        "components": {"securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}}},
        "security": _AUTH,
        "paths": {
            "/v1/check": {
                "post": {
                    "summary": "check one image now with the live detectors and policy",
                    "parameters": _QUERY,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "image/jpeg": image,
                            "image/png": image,
                            "image/webp": image,
                            "application/octet-stream": image,
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["image_url"],
                                    "properties": {
                                        "image_url": {
                                            "type": "string",
                                            "description": "https:// or data: URL",
                                        }
                                    },
                                }
                            },
                        },
                    },
                    "responses": {
                        "200": _json(_CHECK, "scores, hash matches and the decision"),
                        "400": {"description": "bad request or image URL refused", "content": _ERR},
                        **_COMMON,
                        "422": {
                            "description": "the image could not be decoded, or is over "
                            "scoring.max_image_pixels",
                            "content": _ERR,
                        },
                    },
                }
            },
            "/v1/moderations": {
                "post": {
                    "summary": "OpenAI-compatible moderation (omni-moderation's answer shape)",
                    "parameters": _QUERY,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["input"],
                                    "properties": {
                                        "model": {"type": "string"},
                                        "input": {
                                            "oneOf": [
                                                {"type": "string"},
                                                _OBJ,
                                                {
                                                    "type": "array",
                                                    "minItems": 1,
                                                    "items": {"type": "string"},
                                                },
                                                {"type": "array", "minItems": 1, "items": _OBJ},
                                            ]
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["id", "model", "results"],
                                "properties": {
                                    "id": {"type": "string"},
                                    "model": {"type": "string"},
                                    "results": {"type": "array", "items": _RESULT},
                                },
                            },
                            "one result per input (a list of parts is one input)",
                        ),
                        "400": {
                            "description": "bad input, undecodable image or refused URL",
                            "content": _ERR,
                        },
                        **_COMMON,
                    },
                }
            },
        },
    }
