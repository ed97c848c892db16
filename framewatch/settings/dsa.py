"""Settings of `framewatch dsa submit` (section `dsa:` in the config file, env `FRAMEWATCH_DSA__*`).

The DSA Transparency Database has two environments with separate accounts and tokens: the
sandbox you are given at onboarding, and production. Point base_url and token at the same one.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

PRODUCTION_URL = "https://transparency.dsa.ec.europa.eu"


class DsaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(
        PRODUCTION_URL,
        description="Transparency Database root: production is "
        f"{PRODUCTION_URL}; the sandbox URL comes with your onboarding (test there first)",
    )
    token: SecretStr | None = Field(
        None, description="API token (Bearer) generated in the database's user profile"
    )
    batch_size: int = Field(100, ge=1, le=100, description="statements per API call (API: 1-100)")
    timeout_s: float = Field(30.0, gt=0, description="HTTP timeout of one API call")
    retry_attempts: int = Field(
        8, ge=1, description="tries of one batch on 429/5xx/network errors before giving up"
    )
    retry_max_wait_s: float = Field(
        60.0, gt=0, description="longest wait between tries (Retry-After is honoured up to this)"
    )
    tenant: str = Field(
        "default",
        description="submit this tenant's statements only: each tenant is its own platform in "
        "the database, with its own token (run one submitter per tenant)",
    )
    group_id: str = Field(
        "framewatch-dsa-submit",
        description="Kafka consumer group (the tenant is appended): where submission resumes",
    )

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")):
            raise ValueError("expected an http(s):// URL, e.g. " + PRODUCTION_URL)
        return v.rstrip("/")
