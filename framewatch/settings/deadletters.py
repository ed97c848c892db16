"""How big a dead-letter record may grow: it must always fit where it is produced."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from framewatch.records import MAX_RECORD_BYTES

# Faust's producer (the streams worker) sends at most 1 MB a request (aiokafka's default
# max_request_size); the aiokafka stages send up to the record cap. A dead letter's payload
# travels base64 (4/3 the size) next to an error text and a key, so the payload limit is tied
# to the smaller of the two.
FAUST_MAX_REQUEST_BYTES = 1_048_576
ENVELOPE_BYTES = 16 * 1024  # field names, ids, error text, key: all cut well below this


class DeadLetterSettings(BaseModel):
    """Dead-letter records keep the first bytes of what failed, its size and its SHA-256."""

    payload_max_bytes: int = Field(
        64 * 1024,
        ge=0,
        description="bytes of the failed record kept in its dead letter (the rest: size and "
        "SHA-256 only); base64 of it plus 16 KiB must fit Faust's 1 MB producer request",
    )
    error_max_chars: int = Field(
        2000, ge=80, le=4000, description="characters of the error text kept in a dead letter"
    )

    @model_validator(mode="after")
    def _fits(self) -> DeadLetterSettings:
        biggest = (self.payload_max_bytes + 2) // 3 * 4 + ENVELOPE_BYTES
        if biggest > min(FAUST_MAX_REQUEST_BYTES, MAX_RECORD_BYTES):
            most = (FAUST_MAX_REQUEST_BYTES - ENVELOPE_BYTES) // 4 * 3
            raise ValueError(
                f"payload_max_bytes {self.payload_max_bytes} makes dead letters over Faust's "
                f"1 MB request limit; use at most {most}"
            )
        return self
