"""The shape of a policy file, as pydantic models: what :mod:`framewatch.policy` validates.

Split from the engine so that the file's grammar (fields, ranges, which combinations make
sense) reads in one place; the checks that need the taxonomy follow in ``policy.parse_file``.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from framewatch import combine

# the longest smoothing window (k of the last n frames): the stream state keeps this many scores
# per category, and the whole state goes to the table's changelog on every frame
MAX_HISTORY = 64


def _threshold(v: float) -> float:
    if not 0 <= v <= 1:
        raise ValueError(f"a score threshold is between 0 and 1, got {v!r}")
    return float(v)


Threshold = Annotated[float, AfterValidator(_threshold)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SmoothingModel(_Strict):
    """{k, n}: k of the last n frames over the threshold; {hold_s}: over it that long."""

    k: int | None = Field(None, ge=1)
    n: int | None = Field(None, ge=1, le=MAX_HISTORY)
    hold_s: float | None = Field(None, ge=0, strict=False)

    @model_validator(mode="after")
    def _one_shape(self) -> SmoothingModel:
        if self.hold_s is not None and self.k is None and self.n is None:
            return self
        if self.hold_s is None and self.k is not None and self.n is not None:
            if not 1 <= self.k <= self.n <= MAX_HISTORY:
                raise ValueError(
                    f"smoothing needs integers 1 <= k <= n <= {MAX_HISTORY}, "
                    f"got k={self.k} n={self.n}"
                )
            return self
        raise ValueError("smoothing is {k: K, n: N} (k of the last n frames) or {hold_s: SECONDS}")


class RuleModel(_Strict):
    """One rule; what it leaves out comes from the less specific rules, then ``defaults``."""

    review: Threshold | None = None
    block: Threshold | None = None
    smoothing: SmoothingModel | None = None
    red_line: bool | None = None
    strike_weight: float | None = Field(None, ge=0, strict=False)
    at_most: Literal["none", "review", "block"] | None = None  # signals: none or review

    @model_validator(mode="after")
    def _block_not_below_review(self) -> RuleModel:
        if self.review is not None and self.block is not None and self.block < self.review:
            raise ValueError(f"block threshold {self.block} is below review {self.review}")
        if self.red_line and self.at_most not in (None, "block"):
            raise ValueError(f"a red line blocks; at_most: {self.at_most} contradicts it")
        return self

    def fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class LadderStepModel(_Strict):
    action: Literal["warn", "restrict", "suspend_stream", "suspend_account"]
    strikes: float = Field(gt=0, strict=False)


class EnforcementModel(_Strict):
    half_life_days: float | None = Field(None, gt=0, strict=False)  # None: the shipped one
    ladder: list[LadderStepModel] = []

    @model_validator(mode="after")
    def _increasing(self) -> EnforcementModel:
        for a, b in itertools.pairwise(self.ladder):
            if b.strikes <= a.strikes:
                raise ValueError("ladder strikes must increase step by step")
        return self


class ScopeModel(_Strict):
    tenant: str | None = None
    channel: str | None = None


class PolicyFileModel(_Strict):
    """A policy file as written: scope, defaults, rules per taxonomy node, enforcement."""

    scope: ScopeModel = ScopeModel()
    defaults: RuleModel = RuleModel()
    rules: dict[str, RuleModel] = {}
    enforcement: EnforcementModel | None = None
    quiet_period_s: float | None = Field(None, ge=0, strict=False)
    combined: dict[str, combine.CombinedModel] = {}

    @field_validator("scope", "defaults", "rules", "combined", mode="before")
    @classmethod
    def _empty_is_default(cls, v: Any) -> Any:
        return {} if v is None else v
