"""Settings of the alerts stage (section `alerts:` in the config file, env `FRAMEWATCH_ALERTS__*`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class AlertsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    routing_file: Path = Field(Path("alerts.yaml"), description="YAML routing of alerts to sinks")
    http_host: str = "127.0.0.1"
    http_port: int = Field(8084, ge=0, le=65535, description="ack endpoint")
