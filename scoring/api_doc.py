"""The OpenAPI document of the check API (served at ``/openapi.json``)."""

from __future__ import annotations

from typing import Any

_ERR = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {"message": {"type": "string"}},
                }
            },
        }
    }
}
_SCORES = {"type": "object", "additionalProperties": {"type": "number"}}
_CHECK = {
    "type": "object",
    "required": ["scores", "models", "hash_matches", "text", "pdq", "pdq_quality", "decision",
                 "rationale", "detections"],
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
        "detections": {"type": "array", "items": {"type": "object"}},
    },
}  # fmt: skip
_PART = {
    "oneOf": [
        {"type": "string"},
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
    "required": ["flagged", "categories", "category_scores", "framewatch"],
    "properties": {
        "flagged": {"type": "boolean"},
        "categories": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "category_scores": _SCORES,
        "framewatch": {"type": "object", "required": ["scores"], "properties": {"scores": _SCORES}},
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi() -> dict[str, Any]:
    image = {"schema": {"type": "string", "format": "binary"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "framewatch check API", "version": "1"},
        "paths": {
            "/v1/check": {
                "post": {
                    "summary": "score one image now and decide under the default thresholds",
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
                        "413": {
                            "description": "body over scoring.max_image_bytes",
                            "content": _ERR,
                        },
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
                    "summary": "OpenAI-compatible moderation of text and image parts",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["input"],
                                    "properties": {
                                        "input": {
                                            "oneOf": [
                                                _PART,
                                                {"type": "array", "minItems": 1, "items": _PART},
                                            ]
                                        }
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
                            "one result per input part",
                        ),
                        "400": {
                            "description": "bad input, undecodable image or refused URL",
                            "content": _ERR,
                        },
                        "413": {
                            "description": "body over scoring.max_image_bytes",
                            "content": _ERR,
                        },
                    },
                }
            },
        },
    }
