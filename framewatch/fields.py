"""Field types every record shares: bounded numbers and times, strict models.

A time outside 1970..2100, a NaN or an infinity is a poison record: refused where it enters
(each record decoder, and the push API through :data:`EPOCH`), never carried downstream.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import ConfigDict, Field, TypeAdapter

CategoryPath = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){0,2}$",
        description="taxonomy path L1[.L2[.L3]]",
    ),
]
Score = Annotated[float, Field(ge=0.0, le=1.0)]
EPOCH_MIN, EPOCH_MAX = 0.0, 4_102_444_800.0  # 1970-01-01 .. 2100-01-01
Epoch = Annotated[
    float,
    Field(
        ge=EPOCH_MIN,
        le=EPOCH_MAX,
        allow_inf_nan=False,
        description="epoch seconds, 1970..2100 (a time outside it is a poison record)",
    ),
]
EPOCH = TypeAdapter(Epoch)  # the same bound where a time enters through an API
PdqHex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="PDQ hash, 256 bits as hex")]

# every float field of every record refuses NaN and infinities: JSON has neither, and a
# receiver (a webhook, the DSA database) rejects a body that carries one
STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

# a tenant's own names (stream, account, reviewer): they become Redis and Kafka keys, log
# fields and metric labels, so they are bounded and printable where they enter (APIs, CLI, RTMP
# keys); records keep plain strings so replayed history still decodes
ID_MAX = 128
ID_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9._:@+-]{{0,{ID_MAX - 1}}}$"
Ident = Annotated[
    str,
    Field(
        pattern=ID_PATTERN,
        max_length=ID_MAX,
        description=f"letters, digits and . _ : @ + - (not first), at most {ID_MAX} characters",
    ),
]
IDENT = TypeAdapter(Ident)
ID_SCHEMA = {"type": "string", "pattern": ID_PATTERN, "maxLength": ID_MAX}  # OpenAPI
IDENT_RE = re.compile(ID_PATTERN.strip("^$"))
ID_RULE = (
    f"1 to {ID_MAX} characters: letters, digits and . _ : @ + - , starting with a letter or digit"
)


class BadIdError(ValueError):
    """An id that is not :data:`ID_PATTERN`; its message names the rule (never echoes the id)."""


def ident(value: str, what: str) -> str:
    """``value`` when it is a valid id, else BadIdError saying what the rule is."""
    if not (0 < len(value) <= ID_MAX) or IDENT_RE.fullmatch(value) is None:
        raise BadIdError(f"{what} must be {ID_RULE} (pattern {ID_PATTERN})")
    return value
