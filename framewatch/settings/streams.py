"""Settings of the streams stage (section `streams:` in the config file, env `FRAMEWATCH_STREAMS__*`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from framewatch.dsa import EU_COUNTRIES, expand_scope


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
        default_factory=dict,
        description="tenant -> ISO country codes (EU/EEA) for DSA statements; 'EU' and 'EEA' "
        "expand to their member states",
    )
    default_territorial_scope: list[str] = Field(
        default_factory=lambda: list(EU_COUNTRIES),
        min_length=1,
        description="DSA territorial_scope when a tenant has none (default: the 27 EU states)",
    )
    replay_window: int = Field(
        64,
        ge=1,
        le=10_000,
        description="frame ids remembered per stream: a scores record whose frame id is among "
        "them is a replay (scorer or worker restart) and is not counted again. The whole list "
        "goes to the table's changelog with every frame (~36 bytes an id), so keep it to what "
        "a replay can span: a worker replays what it had not committed (commit_interval_s), a "
        "scorer at most its max_in_flight frames. A replay beyond it re-sends decisions with "
        "the same ids, which the ledger and every consumer de-duplicate",
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
    # throughput knobs of the Faust worker (benchmarks/streams.py measures them)
    commit_every: int = Field(
        10_000,
        ge=1,
        description="also commit after this many records between intervals; Faust commits "
        "inline, stalling the consumer for a producer flush + commit round trip, so keep it high",
    )
    commit_interval_s: float = Field(
        0.5, gt=0, description="commit offsets this often (after flushing the outputs)"
    )
    producer_linger_ms: int = Field(
        5,
        ge=0,
        description="wait this long to batch outputs and changelog writes into one request",
    )
    lag_interval_s: float = Field(
        5.0, gt=0, description="how often to export consumer lag (framewatch_consumer_lag)"
    )
    session_timeout_s: float = Field(
        30.0,
        ge=6.0,
        description="a worker silent this long is dropped from the group and its partitions "
        "move to the others (Kafka's group.min.session.timeout.ms is 6 s)",
    )

    @field_validator("default_territorial_scope")
    @classmethod
    def _scope(cls, v: list[str]) -> list[str]:
        return expand_scope(v)

    @field_validator("territorial_scope")
    @classmethod
    def _scopes(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        return {tenant: expand_scope(codes) for tenant, codes in v.items() if codes}
