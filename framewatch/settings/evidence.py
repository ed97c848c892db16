"""Settings of the evidence store (section `evidence:`, env `FRAMEWATCH_EVIDENCE__*`).

Written by the scorer (staging) and the streams worker (pinning), read by the console, so it is
a core section rather than a stage's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class EvidenceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="stage frames and pin evidence for block/review")
    backend: Literal["local", "s3"] = Field(
        "local", description="local files (no set-up) or an S3-compatible object store"
    )
    dir: Path = Field(
        Path(".framewatch") / "evidence",
        description="root of the local store; share it (NFS) when stages run on several hosts",
    )
    floor: float = Field(
        0.2,
        ge=0.0,
        le=1.0,
        description="the scorer stages a frame whose top score reaches this (or with a hash "
        "match or text finding); 0 stages every frame",
    )
    staging_ttl_s: int = Field(
        900, ge=10, description="a staged frame no decision pinned is swept after this long"
    )
    frames_before: int = Field(
        6, ge=0, le=64, description="staged frames before the trigger a decision pins"
    )
    retention_days: int = Field(90, ge=1, description="default retention of pinned evidence")
    retention: dict[str, int] = Field(
        default_factory=dict,
        description="days per 'tenant:category', 'category' or 'tenant:*' (most specific wins; "
        "a category prefix covers its children)",
    )
    legal_hold_red_lines: bool = Field(
        True, description="red-line evidence is kept under legal hold (never swept)"
    )
    s3_endpoint: str | None = Field(None, description="S3-compatible endpoint URL")
    s3_bucket: str = "framewatch-evidence"
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None
