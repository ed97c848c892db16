"""Settings of the streams stage (section `streams:` in the config file, env `FRAMEWATCH_STREAMS__*`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from framewatch.dsa import EU_COUNTRIES, expand_scope


class StreamsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy_dir: Path = Field(Path("policies"), description="folder of policy YAML files")
    shadow_policy_dir: Path | None = Field(
        None, description="a second policy set run in shadow on live scores: its decisions go "
        "to the decisions_shadow topic only (no alert, statement, strike or hot mark); unset: off"
    )  # fmt: skip
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
    audit_in_flight: int = Field(
        256,
        ge=1,
        le=100_000,
        description="audit links the worker has sent but not yet covered by a saved chain "
        "head, at most: the chain agent waits for a broker round trip per this many links, "
        "not per link. A replay after a crash re-sends up to this many links (exact "
        "duplicates); `audit verify` accepts re-sends this far back, so raise it, never lower "
        "it, on a chain that exists",
    )
    # the account ledger (one table row per account; the whole row goes to the changelog on
    # every strike, so it must stay small)
    ledger_seen_kept: int = Field(
        5000, ge=100, description="decision ids remembered per account (a replay counts once)"
    )
    ledger_strike_days: float = Field(
        365.0,
        ge=30.0,
        description="strikes older than this leave the ledger (at the 30-day half-life a "
        "year-old strike weighs under 0.03%); at least the longest count window, 30 days",
    )
    ledger_history_kept: int = Field(
        100, ge=1, description="ladder steps remembered per account (`framewatch account show`)"
    )
    # Faust tables: memory:// replays each table's whole changelog on every start or failover;
    # rocksdb:// keeps them on disk under data_dir (pip install rocksdict) and replays the tail
    table_store: Literal["memory://", "rocksdb://"] = Field(
        "memory://", description="where the worker keeps its tables (stream state, ledgers)"
    )
    table_standby_replicas: int = Field(
        0,
        ge=0,
        le=3,
        description="warm copies of each table partition on other workers, so a failover "
        "does not wait for a changelog replay (needs that many more workers)",
    )
    # throughput knobs of the Faust worker (benchmarks/streams.py measures them)
    commit_every: int = Field(
        10_000,
        ge=1,
        description="also commit after this many records between intervals; Faust commits "
        "inline, stalling the consumer for a producer flush + commit round trip, so keep it high",
    )
    stall_s: float = Field(
        5.0,
        gt=0,
        description="an agent that has waited this long for its next record while its "
        "partition holds records past the last one it got is handed them from the broker "
        "(Faust can move past records it fetched during a rebalance without delivering them; "
        "no later record would show the gap). Checked every stall_s",
    )
    commit_interval_s: float = Field(
        0.5, gt=0, description="commit offsets this often (after flushing the outputs)"
    )
    producer_linger_ms: int = Field(
        5,
        ge=0,
        description="wait this long to batch outputs and changelog writes into one request",
    )
    producer_batch_kb: int = Field(
        256,
        ge=16,
        le=1000,
        description="largest batch of records the worker's producer sends to one partition "
        "(under the broker's max.message.bytes, 1 MiB by default): a full batch makes the next "
        "send wait for the broker, and Faust then stops fetching (Kafka's 16 KiB default "
        "holds about 9 stream states)",
    )
    pin_concurrency: int = Field(
        32,
        ge=1,
        description="evidence pins (small file writes) running on threads at once, off the "
        "decision path; the next offset commit waits for them",
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
