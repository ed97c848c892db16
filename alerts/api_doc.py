"""The router's HTTP answers as models, and its OpenAPI document (``/openapi.json``) built on
their generated schemas."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from framewatch import fields, httpapi


class Acknowledged(BaseModel):
    """The answer to an ack: the incident's escalation stops."""

    incident_id: str
    acknowledged: bool


class Healthy(BaseModel):
    ok: bool


def openapi() -> dict[str, Any]:
    err = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "framewatch alert router", "version": "1"},
        "paths": {
            "/v1/alerts/{id}/ack": {
                "post": {
                    "summary": "acknowledge an open incident: stops its escalation",
                    "description": "Authorization: Bearer with an on-call key (its SHA-256 in "
                    "alerts.oncall_keys_sha256: any tenant's incident, red lines included) or a "
                    "tenant API key (only that tenant's incidents that are not red lines).",
                    "security": [{"bearer": []}],
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "by",
                            "in": "query",
                            "schema": fields.ID_SCHEMA,
                            "description": "who acknowledges (kept with the ack and logged): "
                            f"{fields.ID_RULE}",
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "acknowledged",
                            "content": httpapi.json_content(Acknowledged),
                        },
                        "401": {"description": "no on-call key or API key", "content": err},
                        "403": {
                            "description": "a red-line incident and a tenant key: only "
                            "on-call acknowledges red lines",
                            "content": err,
                        },
                        "404": {"description": "no open incident of the caller", "content": err},
                        "422": {"description": "'by' is not an id", "content": err},
                        "503": {"description": "Redis unavailable; retry", "content": err},
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "liveness",
                    "responses": {
                        "200": {
                            "description": "up",
                            "content": {"application/json": {"schema": httpapi.ref(Healthy)}},
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": httpapi.ERROR_SCHEMA,
                **httpapi.component_schemas(Acknowledged, Healthy),
            },
        },
    }
