"""Field types every record shares: bounded numbers and times, strict models.

A time outside 1970..2100, a NaN or an infinity is a poison record: refused where it enters
(each record decoder, and the push API's query model through :data:`Epoch`), never carried downstream.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

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
PdqHex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="PDQ hash, 256 bits as hex")]

# every float field of every record refuses NaN and infinities: JSON has neither, and a
# receiver (a webhook, the DSA database) rejects a body that carries one
STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
