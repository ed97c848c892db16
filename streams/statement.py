"""DSA statements of reasons for blocks and enforcement, validated against a JSON Schema.

Fields follow the EU DSA Transparency Database API; the category comes from the taxonomy's
``dsa`` mapping. Red lines are decided fully automatically; other blocks partially (a human
reviews them through the reviews topic).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import cache
from typing import Any

import fastjsonschema

from framewatch.errors import FramewatchError
from framewatch.records import Decision, Enforcement, StatementOfReasons
from framewatch.settings import Settings
from framewatch.taxonomy import Taxonomy

ILLEGAL_ROOTS = {"child_safety", "terrorism", "known_bad"}


class StatementError(FramewatchError):
    """A statement failed its JSON Schema; a bug in the builder (report it with the record)."""


@cache
def _validator() -> Callable[[Any], Any]:
    """The statement schema compiled to Python once (fastjsonschema: ~20 us a statement, where
    jsonschema's interpreter took ~400 us, a red-line block's largest single cost)."""
    schema = StatementOfReasons.model_json_schema(mode="serialization")
    # the Transparency DB requires these; our model lets them default, the statement must not
    schema["required"] = sorted(
        set(schema.get("required", [])) | {"decision_ground", "category", "content_type", "puid"}
    )
    return fastjsonschema.compile(schema)


def validate(statement: StatementOfReasons) -> None:
    try:
        _validator()(statement.model_dump(mode="json"))
    except fastjsonschema.JsonSchemaValueException as err:
        where = ".".join(str(p) for p in err.path[1:]) or "(statement)"
        raise StatementError(f"statement of reasons invalid at {where}: {err.message}") from None
    if not (statement.decision_visibility or statement.decision_account):
        raise StatementError("statement of reasons needs decision_visibility or decision_account")


def _date(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


def _ground(category: str, taxonomy: Taxonomy) -> dict[str, Any]:
    if category.split(".")[0] in ILLEGAL_ROOTS:
        return {
            "decision_ground": "DECISION_GROUND_ILLEGAL_CONTENT",
            "illegal_content_legal_ground": "Illegal content under applicable Union or national law",
            "illegal_content_explanation": f"Detected {category} in a live video stream.",
        }
    return {
        "decision_ground": "DECISION_GROUND_INCOMPATIBLE_CONTENT",
        "incompatible_content_ground": "Terms of service: prohibited content in live streams",
        "incompatible_content_explanation": f"Detected {category} in a live video stream.",
        "incompatible_content_illegal": "No",
    }


def for_decision(d: Decision, taxonomy: Taxonomy, settings: Settings) -> StatementOfReasons:
    """The statement for a stream block (visibility restriction of the live stream)."""
    top = d.reasons[0]
    facts = "; ".join(
        f"{r.category} scored {r.score:.2f} >= threshold {r.threshold:.2f} "
        f"in {r.frames_seen} of {r.frames_window} frames ({r.source}, rule {r.rule})"
        for r in d.reasons
    )
    s = StatementOfReasons(
        decision_visibility=["DECISION_VISIBILITY_CONTENT_DISABLED"],
        category=_category(top.category, taxonomy),
        category_specification=[],
        content_date=_date(d.captured_at),
        application_date=_date(d.decided_at),
        decision_facts=f"Live stream {d.stream_id} blocked: {facts}. Policy {d.policy_version}.",
        source_type="SOURCE_VOLUNTARY",
        automated_detection="Yes",
        automated_decision="AUTOMATED_DECISION_FULLY"
        if d.red_line
        else "AUTOMATED_DECISION_PARTIALLY",
        territorial_scope=_scope(d.tenant, settings),
        puid=d.decision_id,
        **_ground(top.category, taxonomy),
    )
    validate(s)
    return s


def for_enforcement(
    e: Enforcement, category: str, taxonomy: Taxonomy, settings: Settings, red_line: bool
) -> StatementOfReasons:
    """The statement for an account-level step (warning, restriction, suspension)."""
    account = _ACCOUNT_DECISION.get(e.action)
    vis = [] if account else ["DECISION_VISIBILITY_OTHER"]
    s = StatementOfReasons(
        decision_visibility=vis,
        decision_visibility_other=None if account else "Warning issued to the account",
        decision_account=account,
        category=_category(category, taxonomy),
        application_date=_date(e.issued_at),
        decision_facts=(
            f"Account {e.account_id} moved to '{e.action}' (ladder step {e.ladder_step}) with "
            f"{e.strike_total:.2f} decayed strikes "
            + ", ".join(f"{k}={v:.2f}" for k, v in sorted(e.strikes.items()))
            + f" after decisions {', '.join(e.decision_ids)}. Policy {e.policy_version}."
        ),
        source_type="SOURCE_VOLUNTARY",
        automated_detection="Yes",
        automated_decision="AUTOMATED_DECISION_FULLY"
        if red_line
        else "AUTOMATED_DECISION_PARTIALLY",
        territorial_scope=_scope(e.tenant, settings),
        puid=e.enforcement_id,
        **_ground(category, taxonomy),
    )
    validate(s)
    return s


# ladder action -> the DSA decision_account it amounts to (warn restricts nothing)
_ACCOUNT_DECISION = {
    "restrict": "DECISION_ACCOUNT_SUSPENDED",
    "suspend_stream": "DECISION_ACCOUNT_SUSPENDED",
    "suspend_account": "DECISION_ACCOUNT_TERMINATED",
}


def _category(category: str, taxonomy: Taxonomy) -> str:
    """The DSA STATEMENT_CATEGORY_* of a taxonomy path (OTHER for paths it does not know)."""
    if category in taxonomy:
        return taxonomy.dsa_category(category)
    return "STATEMENT_CATEGORY_OTHER_VIOLATION_TC"


def _scope(tenant: str, settings: Settings) -> list[str]:
    return (
        settings.streams.territorial_scope.get(tenant) or settings.streams.default_territorial_scope
    )


def for_correction(
    allow: Decision,
    original_id: str,
    category: str,
    reviewer: str | None,
    note: str | None,
    taxonomy: Taxonomy,
    settings: Settings,
) -> StatementOfReasons:
    """The corrected statement when a reviewer overturns a block: the restriction has ended.

    The Transparency Database has no "amend" call, so the correction is a new statement (puid =
    the correcting decision) that names the original (puid = the original decision id) in its
    facts and sets ``end_date_visibility_restriction`` to the day the block was lifted.
    """
    who = f" by {reviewer}" if reviewer else ""
    why = f" Reviewer note: {note}" if note else ""
    s = StatementOfReasons(
        decision_visibility=["DECISION_VISIBILITY_CONTENT_DISABLED"],
        category=_category(category, taxonomy),
        content_date=_date(allow.captured_at),
        application_date=_date(allow.decided_at),
        end_date_visibility_restriction=_date(allow.decided_at),
        decision_facts=(
            f"Correction of statement {original_id}: the block of live stream {allow.stream_id} "
            f"for {category} was overturned on human review{who} and lifted; this statement "
            f"({allow.decision_id}) supersedes it.{why} Policy {allow.policy_version}."
        ),
        source_type="SOURCE_VOLUNTARY",
        automated_detection="Yes",
        automated_decision="AUTOMATED_DECISION_PARTIALLY",
        territorial_scope=_scope(allow.tenant, settings),
        puid=allow.decision_id,
        **_ground(category, taxonomy),
    )
    validate(s)
    return s


def for_reversal(
    e: Enforcement, category: str, overturned: str, taxonomy: Taxonomy, settings: Settings
) -> StatementOfReasons:
    """The corrected statement when an overturned decision steps an account down the ladder."""
    account = _ACCOUNT_DECISION.get(e.action)
    s = StatementOfReasons(
        decision_visibility=[] if account else ["DECISION_VISIBILITY_OTHER"],
        decision_visibility_other=None if account else "Account restriction lifted or reduced",
        decision_account=account,
        category=_category(category, taxonomy),
        application_date=_date(e.issued_at),
        end_date_account_restriction=_date(e.issued_at),
        decision_facts=(
            f"Correction of statement {e.reverses}: decision {overturned} was overturned on "
            f"human review and its strike removed; account {e.account_id} moved from "
            f"'{e.previous_action}' to '{e.action}' (ladder step {e.ladder_step}) with "
            f"{e.strike_total:.2f} decayed strikes. Policy {e.policy_version}."
        ),
        source_type="SOURCE_VOLUNTARY",
        automated_detection="Yes",
        automated_decision="AUTOMATED_DECISION_PARTIALLY",
        territorial_scope=_scope(e.tenant, settings),
        puid=e.enforcement_id,
        **_ground(category, taxonomy),
    )
    validate(s)
    return s
