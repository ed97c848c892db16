"""The router's HTTP answers as models, and its OpenAPI document (``/openapi.json``) built on
their generated schemas."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from framewatch import httpapi


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
                    "description": "Authorization: Bearer with alerts.ack_token (on-call, any "
                    "tenant) or a tenant API key (only that tenant's incidents).",
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
                            "schema": {"type": "string"},
                            "description": "who acknowledges (kept with the ack)",
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "acknowledged",
                            "content": httpapi.json_content(Acknowledged),
                        },
                        "401": {"description": "no valid token or API key", "content": err},
                        "404": {"description": "no open incident of the caller", "content": err},
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
