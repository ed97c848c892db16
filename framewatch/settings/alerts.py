"""Settings of the alerts stage (section `alerts:` in the config file, env `FRAMEWATCH_ALERTS__*`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class AlertsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    routing_file: Path = Field(Path("alerts.yaml"), description="YAML routing of alerts to sinks")
    http_host: str = "127.0.0.1"
    http_port: int = Field(8084, ge=0, le=65535, description="ack endpoint")
    oncall_keys_sha256: list[Sha256Hex] = Field(
        default_factory=list,
        description="SHA-256 (hex) of each on-call key (`framewatch alerts oncall-key` makes "
        "one): only these acknowledge red-line incidents, of any tenant; a tenant's API key "
        "acknowledges only its own other incidents. Several at once: rotate without downtime",
    )
    group_id: str = Field("framewatch-alerts", description="Kafka consumer group of the router")
    max_in_flight: int = Field(
        64, ge=1, le=4096, description="deliveries in flight per sink (each sink has its own lane)"
    )
    max_pending: int = Field(
        10_000, ge=1, description="records read but not yet delivered to every sink; past this "
        "the router stops reading until its sinks catch up (a dead sink holds back its own)"
    )  # fmt: skip
    max_attempts: int = Field(8, ge=1, le=100, description="delivery tries before dead-letter")
    backoff_base_s: float = Field(0.5, gt=0, description="first retry delay (doubles each try)")
    backoff_max_s: float = Field(30.0, gt=0, description="cap of one retry delay")
    retry_after_max_s: float = Field(120.0, gt=0, description="cap on a sink's Retry-After")
    request_timeout_s: float = Field(10.0, gt=0, description="default per-request timeout")
    breaker_failures: int = Field(5, ge=1, description="consecutive failures that open a breaker")
    breaker_reset_s: float = Field(30.0, gt=0, description="open breaker waits this long")
    escalate_after_s: float = Field(
        900.0, gt=0, description="unacknowledged red-line alert goes to the next tier after this"
    )
    escalation_check_s: float = Field(5.0, gt=0, description="how often escalations are checked")
    rate_window_s: float = Field(
        600.0, ge=0, description="alerts of one stream/account in this window fold into the first"
    )
    dedup_ttl_s: int = Field(7 * 86400, ge=60, description="how long 'delivered' marks are kept")
    evidence_url: str = Field(
        "", description="link template for evidence, e.g. https://review/frames/{frame_id}"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_clear_token(cls, data: Any) -> Any:
        if isinstance(data, dict) and "ack_token" in data:
            raise ValueError(
                "alerts.ack_token is gone: on-call keys are kept as digests. Run `framewatch "
                "alerts oncall-key`, put its sha256 in alerts.oncall_keys_sha256 (env "
                "FRAMEWATCH_ALERTS__ONCALL_KEYS_SHA256='[\"<sha256>\"]') and give on-call the key"
            )
        return data
