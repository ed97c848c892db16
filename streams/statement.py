"""DSA statements of reasons for blocks, ladder steps, corrections and reversals.

Each builder returns a :class:`framewatch.dsa.StatementOfReasons`, whose construction is the
validation against the Transparency Database's rules (no second pass). The category and its
keywords come from the taxonomy's ``dsa`` / ``keywords``. Red lines are decided fully
automatically; other blocks partially (a human reviews them through the reviews topic).

The database publishes every statement and takes no personal data (its API documentation), so
the facts name decisions, categories, scores and policy versions, never an account, a stream or
a reviewer: the puid (our decision or enforcement id) leads back to those in our own records.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ValidationError

from framewatch import dsa
from framewatch.errors import FramewatchError
from framewatch.records import Decision, Enforcement, StatementOfReasons
from framewatch.settings import Settings
from framewatch.taxonomy import Taxonomy


class StatementError(FramewatchError):
    """A statement broke the Transparency Database's rules: a bug in the builder or the
    taxonomy's DSA mapping (report it with the record)."""


def build(**fields: Any) -> StatementOfReasons:
    """A statement validated against the database's rules; StatementError names the field."""
    try:
        return StatementOfReasons(**fields)
    except ValidationError as err:
        raise StatementError(_describe(err)) from None


def validate(statement: StatementOfReasons | dict[str, Any]) -> StatementOfReasons:
    """Re-check a statement that was copied with changes (model_copy skips validation) or read
    from elsewhere."""
    data = statement.model_dump() if isinstance(statement, StatementOfReasons) else statement
    return build(**data)


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(statement)"
        parts.append(f"{where}: {e['msg'].removeprefix('Value error, ')}")
    return "statement of reasons invalid at " + "; ".join(parts)


def _clip(text: str, limit: int) -> str:
    """Free text within the database's character limit, marked when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _date(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


def _content_date(captured_at: float, application_date: str) -> str:
    """The capture day; a clock the database cannot take (before 2000, after the decision)
    falls back to the decision's day rather than refusing the statement."""
    day = _date(captured_at) if 946_684_800 <= captured_at < 2_145_916_800 else application_date
    return day if dsa.FIRST_CONTENT_DATE <= day <= application_date else application_date


def _what(category: str, taxonomy: Taxonomy) -> dict[str, Any]:
    """category, keywords and decision ground of a taxonomy path.

    Red-line nodes of the taxonomy (CSAM, terrorism, the CSAM/terror/NCII hash banks) are
    illegal content; the rest is incompatible with the terms of service."""
    known = category in taxonomy
    what: dict[str, Any] = {
        "category": taxonomy.dsa_category(category)
        if known
        else "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
        "category_specification": taxonomy.dsa_keywords(category) if known else [],
    }
    explanation = f"Detected {category} in a live video stream."
    if known and taxonomy.is_red_line(category):
        what.update(
            decision_ground="DECISION_GROUND_ILLEGAL_CONTENT",
            illegal_content_legal_ground="Illegal content under applicable Union or national law",
            illegal_content_explanation=explanation,
        )
    else:
        what.update(
            decision_ground="DECISION_GROUND_INCOMPATIBLE_CONTENT",
            incompatible_content_ground="Terms of service: prohibited content in live streams",
            incompatible_content_explanation=explanation,
            incompatible_content_illegal="No",
        )
    return what


def _common(tenant: str, settings: Settings, automated: str, puid: str) -> dict[str, Any]:
    return {
        "content_type": ["CONTENT_TYPE_VIDEO"],
        "source_type": "SOURCE_VOLUNTARY",
        "automated_detection": "Yes",
        "automated_decision": automated,
        "territorial_scope": settings.streams.territorial_scope.get(tenant)
        or settings.streams.default_territorial_scope,
        "puid": puid,
    }


def for_decision(d: Decision, taxonomy: Taxonomy, settings: Settings) -> StatementOfReasons:
    """The statement for a stream block (access to the live stream disabled)."""
    top = d.reasons[0]
    facts = "; ".join(
        f"{r.category} scored {r.score:.2f} >= threshold {r.threshold:.2f} "
        f"in {r.frames_seen} of {r.frames_window} frames ({r.source}, rule {r.rule})"
        for r in d.reasons
    )
    applied = _date(d.decided_at)
    return build(
        decision_visibility=["DECISION_VISIBILITY_CONTENT_DISABLED"],
        content_date=_content_date(d.captured_at, applied),
        application_date=applied,
        decision_facts=_clip(f"Live stream blocked: {facts}. Policy {d.policy_version}.", 5000),
        **_what(top.category, taxonomy),
        **_common(
            d.tenant,
            settings,
            # a red line is blocked without a human, unless a reviewer escalated it
            "AUTOMATED_DECISION_FULLY"
            if d.red_line and all(r.source != "review" for r in d.reasons)
            else "AUTOMATED_DECISION_PARTIALLY",
            d.decision_id,
        ),
    )


# ladder action -> the DSA decision_account it amounts to (warn restricts nothing)
_ACCOUNT_DECISION = {
    "restrict": "DECISION_ACCOUNT_SUSPENDED",
    "suspend_stream": "DECISION_ACCOUNT_SUSPENDED",
    "suspend_account": "DECISION_ACCOUNT_TERMINATED",
}


def _account(action: str, other: str) -> dict[str, Any]:
    account = _ACCOUNT_DECISION.get(action)
    if account:
        return {"decision_account": account}
    return {
        "decision_visibility": ["DECISION_VISIBILITY_OTHER"],
        "decision_visibility_other": other,
    }


def for_enforcement(
    e: Enforcement,
    category: str,
    taxonomy: Taxonomy,
    settings: Settings,
    red_line: bool,
    content_at: float,
) -> StatementOfReasons:
    """The statement for an account-level step (warning, restriction, suspension).

    content_at: capture time of the content that triggered the step (the decision's)."""
    applied = _date(e.issued_at)
    return build(
        **_account(e.action, "Warning issued to the account"),
        content_date=_content_date(content_at, applied),
        application_date=applied,
        decision_facts=_clip(
            f"The account moved to '{e.action}' (ladder step {e.ladder_step}) with "
            f"{e.strike_total:.2f} decayed strikes "
            + ", ".join(f"{k}={v:.2f}" for k, v in sorted(e.strikes.items()))
            + f" after decisions {', '.join(e.decision_ids)}. Policy {e.policy_version}.",
            5000,
        ),
        **_what(category, taxonomy),
        **_common(
            e.tenant,
            settings,
            "AUTOMATED_DECISION_FULLY" if red_line else "AUTOMATED_DECISION_PARTIALLY",
            e.enforcement_id,
        ),
    )


def for_correction(
    allow: Decision,
    original_id: str,
    category: str,
    note: str | None,
    taxonomy: Taxonomy,
    settings: Settings,
) -> StatementOfReasons:
    """The corrected statement when a reviewer overturns a block: the restriction has ended.

    The Transparency Database has no "amend" call, so the correction is a new statement (puid =
    the correcting decision) that names the original (puid = the original decision id) in its
    facts and sets ``end_date_visibility_restriction`` to the day the block was lifted.
    """
    why = f" Reviewer note: {note}" if note else ""
    applied = _date(allow.decided_at)
    return build(
        decision_visibility=["DECISION_VISIBILITY_CONTENT_DISABLED"],
        content_date=_content_date(allow.captured_at, applied),
        application_date=applied,
        end_date_visibility_restriction=applied,
        decision_facts=_clip(
            f"Correction of statement {original_id}: the block of the live stream for "
            f"{category} was overturned on human review and lifted; this statement "
            f"({allow.decision_id}) supersedes it. Policy {allow.policy_version}.{why}",
            5000,
        ),
        **_what(category, taxonomy),
        **_common(allow.tenant, settings, "AUTOMATED_DECISION_PARTIALLY", allow.decision_id),
    )


def for_reversal(
    e: Enforcement,
    category: str,
    overturned: str,
    taxonomy: Taxonomy,
    settings: Settings,
    content_at: float,
) -> StatementOfReasons:
    """The corrected statement when an overturned decision steps an account down the ladder.

    content_at: capture time of the overturned decision's content."""
    applied = _date(e.issued_at)
    return build(
        **_account(e.action, "Account restriction lifted or reduced"),
        content_date=_content_date(content_at, applied),
        application_date=applied,
        end_date_account_restriction=applied,
        decision_facts=_clip(
            f"Correction of statement {e.reverses}: decision {overturned} was overturned on "
            f"human review and its strike removed; the account moved from "
            f"'{e.previous_action}' to '{e.action}' (ladder step {e.ladder_step}) with "
            f"{e.strike_total:.2f} decayed strikes. Policy {e.policy_version}.",
            5000,
        ),
        **_what(category, taxonomy),
        **_common(e.tenant, settings, "AUTOMATED_DECISION_PARTIALLY", e.enforcement_id),
    )
