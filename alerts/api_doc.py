"""The OpenAPI document of the router's HTTP endpoint (served at ``/openapi.json``)."""

from __future__ import annotations

from typing import Any

from framewatch.httpapi import ERROR_SCHEMA


def openapi() -> dict[str, Any]:
    err = {"application/json": {"schema": ERROR_SCHEMA}}
    acked = {
        "type": "object",
        "required": ["incident_id", "acknowledged"],
        "properties": {"incident_id": {"type": "string"}, "acknowledged": {"type": "boolean"}},
    }
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
                            "content": {"application/json": {"schema": acked}},
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
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["ok"],
                                        "properties": {"ok": {"type": "boolean"}},
                                    }
                                }
                            },
                        }
                    },
                }
            },
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
