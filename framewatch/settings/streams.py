"""Settings of the streams stage (section `streams:` in the config file, env `FRAMEWATCH_STREAMS__*`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class StreamsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy_dir: Path = Field(Path("policies"), description="folder of policy YAML files")
