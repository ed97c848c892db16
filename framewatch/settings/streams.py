"""Settings of the streams stage (section `streams:` in the config file, env `FRAMEWATCH_STREAMS__*`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class StreamsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy_dir: Path = Field(Path("policies"), description="folder of policy YAML files")
    data_dir: Path = Field(
        Path(".framewatch") / "streams", description="Faust's local data folder (table state)"
    )
    hot_ttl_s: int = Field(
        300, ge=1, description="TTL of the Redis 'hot' mark on a stream in review"
    )
    runbook_url: str = Field(
        "https://runbooks.example/framewatch/red-line", description="runbook linked from alerts"
    )
    reload_interval_s: float = Field(2.0, gt=0, description="how often to check policy files")
    territorial_scope: dict[str, list[str]] = Field(
        default_factory=dict, description="tenant -> ISO country codes for DSA statements"
    )
    default_territorial_scope: list[str] = Field(
        default_factory=lambda: ["EU"], description="DSA territorial_scope when a tenant has none"
    )
    review_ids_kept: int = Field(
        200, ge=1, description="review ids remembered per stream (re-sent reviews count once)"
    )
    audit_retention_ms: int = Field(
        -1,
        ge=-1,
        description="retention.ms the worker sets on the audit topic at start (-1: keep forever; "
        "a chain whose start expired is verified from its oldest link)",
    )
    session_timeout_s: float = Field(
        60.0,
        ge=6.0,
        description="Kafka group session timeout: how long a crashed worker's partitions wait "
        "before another worker takes them (lower = faster failover, more false rebalances)",
    )
