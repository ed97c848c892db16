"""Settings of the reviewer console (section `console:`, env `FRAMEWATCH_CONSOLE__*`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ConsoleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="address the console listens on")
    port: int = Field(8085, ge=0, le=65535)
    sla_live_s: int = Field(900, ge=1, description="time to a verdict on a live stream's item")
    sla_appeal_s: int = Field(86400, ge=1, description="time to decide an appeal")
    session_ttl_s: int = Field(8 * 3600, ge=60, description="a login lasts this long")
    secure_cookies: bool = Field(
        False, description="mark cookies Secure (set it when the console is served over HTTPS)"
    )
    claim_ttl_s: int = Field(600, ge=30, description="a claim expires if not acted on")
    exposure_cap_per_hour: int = Field(
        20, ge=0, description="red-line/gore items a reviewer is handed per hour (wellbeing)"
    )
    sensitive_categories: list[str] = Field(
        default_factory=lambda: ["violence.gore", "child_safety", "terrorism", "known_bad"],
        description="categories counted as exposures besides every red line",
    )
    reason_codes: list[str] = Field(
        default_factory=lambda: [
            "false_positive_model",
            "context_allowed",
            "newsworthy",
            "wrong_category",
            "other",
        ],
        description="reason codes a reviewer picks when overturning",
    )
    page_size: int = Field(50, ge=1, le=500, description="queue items per page")
    viewers_ttl_s: int = Field(
        300, ge=1, description="a stream's reported viewer count orders the queue this long"
    )
    viewers_refresh_s: float = Field(
        5.0, gt=0, description="how often the console re-reads the reported viewer counts"
    )
    metrics_refresh_s: float = Field(
        15.0, gt=0, description="how often the numbers gauges on /metrics are recomputed"
    )
    login_window_s: int = Field(
        900, ge=1, description="failed logins are counted over this window (then forgotten)"
    )
    login_max_failures_account: int = Field(
        5, ge=1, description="failed logins to one user name in a window before it is throttled"
    )
    login_max_failures_address: int = Field(
        20, ge=1, description="failed logins from one client address in a window (any names)"
    )
    login_tenant_max_failures: dict[str, int] = Field(
        default_factory=dict,
        description="per tenant: failed logins to a user of that tenant before it is throttled "
        "(the strictest of a user's tenants wins; default login_max_failures_account)",
    )
