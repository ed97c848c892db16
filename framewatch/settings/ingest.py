"""Settings of the ingest stage (section `ingest:` in the config file, env `FRAMEWATCH_INGEST__*`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class IngestSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    http_host: str = "127.0.0.1"
    http_port: int = Field(8081, ge=0, le=65535, description="HTTP frame push API")
    default_fps: float = Field(1.0, gt=0, le=60, description="interval sampling rate")
    thumbnail_short_side: int = Field(384, ge=32, le=2160)
