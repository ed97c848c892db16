"""Settings of the scoring stage (section `scoring:` in the config file, env `FRAMEWATCH_SCORING__*`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ScoringSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    http_host: str = "127.0.0.1"
    http_port: int = Field(8082, ge=0, le=65535, description="POST /v1/check and /v1/moderations")
    max_batch: int = Field(16, ge=1, le=1024, description="frames per inference batch")
    max_wait_ms: float = Field(20.0, ge=0, description="how long a batch waits to fill")
