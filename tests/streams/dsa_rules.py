"""The DSA Transparency Database's own validation, re-implemented as its rule table.

Written from the database's source, independently of framewatch's model (nothing is imported
from framewatch): ``digital-services-act/transparency-database`` at commit
69e80a0bc8eb3cbfbe8246e898194c3bdf490a4b (2026-06-24), files
``app/Http/Requests/StatementStoreRequest.php`` (rules()), ``app/Services/GroupedSubmissionsService.php``
(multi_rules(), the batch endpoint), ``app/Models/Statement.php`` (the enum keys),
``app/Services/EuropeanCountriesService.php`` (EUROPEAN_COUNTRY_CODES) and
``app/Services/PlatformUniqueIdService.php`` / ``app/Exceptions/PuidNotUnique*Exception.php``
(duplicate puids). Laravel semantics kept: ``required`` refuses null, blank strings and empty
arrays; ``in`` on an array checks every element; ``exclude_*`` drops a field silently; implicit
rules run on missing fields, the others only on present, non-null ones.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

DECISION_VISIBILITIES = [
    "DECISION_VISIBILITY_CONTENT_REMOVED", "DECISION_VISIBILITY_CONTENT_DISABLED",
    "DECISION_VISIBILITY_CONTENT_DEMOTED", "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED", "DECISION_VISIBILITY_CONTENT_LABELLED",
    "DECISION_VISIBILITY_OTHER",
]  # fmt: skip
DECISION_MONETARIES = [
    "DECISION_MONETARY_SUSPENSION", "DECISION_MONETARY_TERMINATION", "DECISION_MONETARY_OTHER",
]  # fmt: skip
DECISION_PROVISIONS = [
    "DECISION_PROVISION_PARTIAL_SUSPENSION", "DECISION_PROVISION_TOTAL_SUSPENSION",
    "DECISION_PROVISION_PARTIAL_TERMINATION", "DECISION_PROVISION_TOTAL_TERMINATION",
]  # fmt: skip
DECISION_ACCOUNTS = ["DECISION_ACCOUNT_SUSPENDED", "DECISION_ACCOUNT_TERMINATED"]
ACCOUNT_TYPES = ["ACCOUNT_TYPE_BUSINESS", "ACCOUNT_TYPE_PRIVATE"]
DECISION_GROUNDS = ["DECISION_GROUND_ILLEGAL_CONTENT", "DECISION_GROUND_INCOMPATIBLE_CONTENT"]
CONTENT_TYPES = [
    "CONTENT_TYPE_APP", "CONTENT_TYPE_AUDIO", "CONTENT_TYPE_IMAGE", "CONTENT_TYPE_PRODUCT",
    "CONTENT_TYPE_SYNTHETIC_MEDIA", "CONTENT_TYPE_TEXT", "CONTENT_TYPE_VIDEO", "CONTENT_TYPE_OTHER",
]  # fmt: skip
SOURCE_TYPES = [
    "SOURCE_ARTICLE_16", "SOURCE_TRUSTED_FLAGGER", "SOURCE_TYPE_OTHER_NOTIFICATION",
    "SOURCE_VOLUNTARY",
]  # fmt: skip
YES_NO = ["Yes", "No"]
AUTOMATED_DECISIONS = [
    "AUTOMATED_DECISION_FULLY", "AUTOMATED_DECISION_PARTIALLY", "AUTOMATED_DECISION_NOT_AUTOMATED",
]  # fmt: skip
STATEMENT_CATEGORIES = [
    "STATEMENT_CATEGORY_ANIMAL_WELFARE", "STATEMENT_CATEGORY_CONSUMER_INFORMATION",
    "STATEMENT_CATEGORY_CYBER_VIOLENCE", "STATEMENT_CATEGORY_CYBER_VIOLENCE_AGAINST_WOMEN",
    "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS",
    "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
    "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS",
    "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
    "STATEMENT_CATEGORY_NOT_SPECIFIED_NOTICE", "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
    "STATEMENT_CATEGORY_PROTECTION_OF_MINORS", "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
    "STATEMENT_CATEGORY_SCAMS_AND_FRAUD", "STATEMENT_CATEGORY_SELF_HARM",
    "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS", "STATEMENT_CATEGORY_VIOLENCE",
]  # fmt: skip
KEYWORDS = [
    "KEYWORD_ADULT_SEXUAL_MATERIAL", "KEYWORD_AGE_SPECIFIC_RESTRICTIONS",
    "KEYWORD_AGE_SPECIFIC_RESTRICTIONS_MINORS", "KEYWORD_ANIMAL_HARM",
    "KEYWORD_BIOMETRIC_DATA_BREACH", "KEYWORD_BULLYING_AGAINST_GIRLS",
    "KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL", "KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL_DEEPFAKE",
    "KEYWORD_CONTENT_PROMOTING_EATING_DISORDERS", "KEYWORD_COORDINATED_HARM",
    "KEYWORD_COPYRIGHT_INFRINGEMENT", "KEYWORD_CYBER_BULLYING_INTIMIDATION",
    "KEYWORD_CYBER_HARASSMENT", "KEYWORD_CYBER_HARASSMENT_AGAINST_WOMEN",
    "KEYWORD_CYBER_INCITEMENT", "KEYWORD_CYBER_STALKING", "KEYWORD_CYBER_STALKING_AGAINST_WOMEN",
    "KEYWORD_DATA_FALSIFICATION", "KEYWORD_DEFAMATION", "KEYWORD_DESIGN_INFRINGEMENT",
    "KEYWORD_DISCRIMINATION", "KEYWORD_FEMALE_GENDERED_DISINFORMATION",
    "KEYWORD_GEOGRAPHIC_INDICATIONS_INFRINGEMENT", "KEYWORD_GEOGRAPHICAL_REQUIREMENTS",
    "KEYWORD_GOODS_SERVICES_NOT_PERMITTED", "KEYWORD_GROOMING_SEXUAL_ENTICEMENT_MINORS",
    "KEYWORD_HATE_SPEECH", "KEYWORD_HIDDEN_ADVERTISEMENT", "KEYWORD_HUMAN_EXPLOITATION",
    "KEYWORD_HUMAN_TRAFFICKING", "KEYWORD_ILLEGAL_ORGANIZATIONS",
    "KEYWORD_IMPERSONATION_ACCOUNT_HIJACKING", "KEYWORD_INAUTHENTIC_ACCOUNTS",
    "KEYWORD_INAUTHENTIC_LISTINGS", "KEYWORD_INAUTHENTIC_USER_REVIEWS",
    "KEYWORD_INCITEMENT_AGAINST_WOMEN", "KEYWORD_INCITEMENT_VIOLENCE_HATRED",
    "KEYWORD_INSUFFICIENT_INFORMATION_ON_TRADERS", "KEYWORD_LANGUAGE_REQUIREMENTS",
    "KEYWORD_MISINFORMATION_DISINFORMATION", "KEYWORD_MISLEADING_INFO_CONSUMER_RIGHTS",
    "KEYWORD_MISLEADING_INFO_GOODS_SERVICES", "KEYWORD_MISSING_PROCESSING_GROUND",
    "KEYWORD_NON_CONSENSUAL_IMAGE_SHARING", "KEYWORD_NON_CONSENSUAL_IMAGE_SHARING_AGAINST_WOMEN",
    "KEYWORD_NON_CONSENSUAL_MATERIAL_DEEPFAKE",
    "KEYWORD_NON_CONSENSUAL_MATERIAL_DEEPFAKE_AGAINST_WOMEN", "KEYWORD_NONCOMPLIANCE_PRICING",
    "KEYWORD_NUDITY", "KEYWORD_PATENT_INFRINGEMENT", "KEYWORD_PHISHING",
    "KEYWORD_PROHIBITED_PRODUCTS", "KEYWORD_PYRAMID_SCHEMES", "KEYWORD_RIGHT_TO_BE_FORGOTTEN",
    "KEYWORD_RISK_ENVIRONMENTAL_DAMAGE", "KEYWORD_RISK_PUBLIC_HEALTH", "KEYWORD_SELF_MUTILATION",
    "KEYWORD_STALKING", "KEYWORD_SUICIDE", "KEYWORD_TERRORIST_CONTENT",
    "KEYWORD_TRADE_SECRET_INFRINGEMENT", "KEYWORD_TRADEMARK_INFRINGEMENT",
    "KEYWORD_TRAFFICKING_WOMEN_GIRLS", "KEYWORD_UNLAWFUL_SALE_ANIMALS", "KEYWORD_UNSAFE_CHALLENGES",
    "KEYWORD_UNSAFE_PRODUCTS", "KEYWORD_VIOLATION_EU_LAW", "KEYWORD_VIOLATION_NATIONAL_LAW",
    "KEYWORD_OTHER",
]  # fmt: skip
EUROPEAN_COUNTRY_CODES = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS",
    "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
]  # fmt: skip
EU_27 = [c for c in EUROPEAN_COUNTRY_CODES if c not in ("IS", "LI", "NO")]


def _has(data: dict[str, Any], value: str, where: str) -> bool:
    v = data.get(where)
    return value in v if isinstance(v, list) else v == value


# field -> rules, in the order of GroupedSubmissionsService::multi_rules (the batch endpoint).
# A callable rule is Rule::requiredIf / Rule::excludeIf with the request's data.
RULES: dict[str, list[Any]] = {
    "decision_visibility": ["array", ("in_null", DECISION_VISIBILITIES),
                            "required_without_all:decision_monetary,decision_provision,decision_account",
                            "nullable"],
    "decision_visibility_other": [
        "max:500",
        ("required_if_fn", lambda d: _has(d, "DECISION_VISIBILITY_OTHER", "decision_visibility")),
        ("exclude_if_fn", lambda d: not _has(d, "DECISION_VISIBILITY_OTHER", "decision_visibility")),
    ],
    "decision_monetary": [("in_null", DECISION_MONETARIES),
                          "required_without_all:decision_visibility,decision_provision,decision_account",
                          "nullable"],
    "decision_monetary_other": ["required_if:decision_monetary,DECISION_MONETARY_OTHER",
                                "exclude_unless:decision_monetary,DECISION_MONETARY_OTHER", "max:500"],
    "decision_provision": [("in_null", DECISION_PROVISIONS),
                           "required_without_all:decision_visibility,decision_monetary,decision_account",
                           "nullable"],
    "decision_account": [("in_null", DECISION_ACCOUNTS),
                         "required_without_all:decision_visibility,decision_monetary,decision_provision",
                         "nullable"],
    "account_type": [("in_null", ACCOUNT_TYPES), "nullable"],
    "category_specification": ["array", ("in_null", KEYWORDS), "nullable"],
    "category_specification_other": ["max:500"],
    "decision_ground": ["required", ("in", DECISION_GROUNDS)],
    "decision_ground_reference_url": ["url", "nullable", "max:500"],
    "illegal_content_legal_ground": ["required_if:decision_ground,DECISION_GROUND_ILLEGAL_CONTENT",
                                     "exclude_unless:decision_ground,DECISION_GROUND_ILLEGAL_CONTENT",
                                     "max:500"],
    "illegal_content_explanation": ["required_if:decision_ground,DECISION_GROUND_ILLEGAL_CONTENT",
                                    "exclude_unless:decision_ground,DECISION_GROUND_ILLEGAL_CONTENT",
                                    "max:2000"],
    "incompatible_content_ground": ["required_if:decision_ground,DECISION_GROUND_INCOMPATIBLE_CONTENT",
                                    "exclude_unless:decision_ground,DECISION_GROUND_INCOMPATIBLE_CONTENT",
                                    "max:500"],
    "incompatible_content_explanation": [
        "required_if:decision_ground,DECISION_GROUND_INCOMPATIBLE_CONTENT",
        "exclude_unless:decision_ground,DECISION_GROUND_INCOMPATIBLE_CONTENT", "max:2000"],
    "incompatible_content_illegal": [("in", YES_NO),
                                     "exclude_unless:decision_ground,DECISION_GROUND_INCOMPATIBLE_CONTENT"],
    "content_type": ["array", "required", ("in", CONTENT_TYPES)],
    "content_type_other": [
        "max:500",
        ("required_if_fn", lambda d: _has(d, "CONTENT_TYPE_OTHER", "content_type")),
        ("exclude_if_fn", lambda d: not _has(d, "CONTENT_TYPE_OTHER", "content_type")),
    ],
    "category": ["required", ("in", STATEMENT_CATEGORIES)],
    "category_addition": ["array", ("in", STATEMENT_CATEGORIES)],
    "territorial_scope": ["array", "nullable", ("in", EUROPEAN_COUNTRY_CODES)],
    "content_language": ["regex:^[A-Z]{2}$", "nullable"],  # in:ALL_LANGUAGES (ISO 639-1, upper)
    "content_date": ["required", "date_format", "after_or_equal:2000-01-01",
                     "before_or_equal:2038-01-01"],
    "application_date": ["required", "date_format", "after_or_equal:2020-01-01",
                         "before_or_equal:2038-01-01"],
    "end_date_account_restriction": ["date_format", "nullable", "before_or_equal:2038-01-01"],
    "end_date_monetary_restriction": ["date_format", "nullable", "before_or_equal:2038-01-01"],
    "end_date_service_restriction": ["date_format", "nullable", "before_or_equal:2038-01-01"],
    "end_date_visibility_restriction": ["date_format", "nullable", "before_or_equal:2038-01-01"],
    "decision_facts": ["required", "max:5000"],
    "source_type": ["required", ("in", SOURCE_TYPES)],
    "source_identity": ["max:500", "nullable"],
    "automated_detection": ["required", ("in", YES_NO)],
    "automated_decision": ["required", ("in", AUTOMATED_DECISIONS)],
    "puid": ["required", "max:500", "regex:^[a-zA-Z0-9\\-_]+$"],
}  # fmt: skip
IMPLICIT = ("required", "required_if", "required_without_all", "required_if_fn")


def _kind(rule: Any) -> str:
    kind = rule if isinstance(rule, str) else rule[0]
    return kind.split(":", 1)[0]


def _filled(v: Any) -> bool:
    """Laravel's validateRequired."""
    if v is None:
        return False
    if isinstance(v, str):
        return v.strip() != ""
    if isinstance(v, list | dict):
        return len(v) > 0
    return True


def _date(v: Any) -> dt.date | None:
    """PHP's DateTime::createFromFormat('Y-m-d') round-tripped, as Laravel's date_format does."""
    if not isinstance(v, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
        return None
    try:
        return dt.date.fromisoformat(v)
    except ValueError:
        return None


def _url(v: Any) -> bool:
    return isinstance(v, str) and re.fullmatch(r"https?://[^\s/$.?#][^\s]*", v) is not None


def _rule(rule: Any, field: str, v: Any, data: dict[str, Any]) -> str | None:
    """One rule on one field; the error text in the database's words, or None."""
    name = field.replace("_", " ")
    kind, arg = (rule, None) if isinstance(rule, str) else rule
    if isinstance(kind, str) and ":" in kind:
        kind, arg = kind.split(":", 1)
    if kind == "required" and not _filled(v):
        return f"The {name} field is required."
    if kind == "required_if":
        other, value = arg.split(",", 1)
        if data.get(other) == value and not _filled(v):
            return f"The {name} field is required when {other.replace('_', ' ')} is {value}."
    if kind == "required_if_fn" and arg(data) and not _filled(v):
        return f"The {name} field is required."
    if kind == "required_without_all":
        others = arg.split(",")
        if not any(_filled(data.get(o)) for o in others) and not _filled(v):
            return f"The {name} field is required when none of {' / '.join(others)} are present."
    if v is None and kind in (
        "max",
        "required",
        "required_if",
        "required_if_fn",
        "required_without_all",
    ):
        return None  # a present null fails in, array, regex, url and dates (PHP casts it)
    if kind == "array" and not isinstance(v, list | dict):
        return f"The {name} field must be an array."
    if kind in ("in", "in_null"):
        allowed = set(arg) | ({"null"} if kind == "in_null" else set())
        values = v if isinstance(v, list) else [v]
        if any(not isinstance(x, str) or x not in allowed for x in values):
            return f"The selected {name} is invalid."
    if kind == "max" and isinstance(v, str | list) and len(v) > int(arg):
        return f"The {name} field must not be greater than {arg} characters."
    if kind == "regex" and not (isinstance(v, str) and re.fullmatch(arg, v)):
        return f"The {name} field format is invalid."
    if kind == "url" and not _url(v):
        return f"The {name} field must be a valid URL."
    if kind == "date_format" and _date(v) is None:
        return f"The {name} does not match the format YYYY-MM-DD."
    if kind in ("after_or_equal", "before_or_equal"):
        d, bound = _date(v), dt.date.fromisoformat(arg)
        if d is None or (d < bound if kind == "after_or_equal" else d > bound):
            word = "after" if kind == "after_or_equal" else "before"
            return f"The {name} field must be a date {word} or equal to {arg}."
    return None


def _excluded(rules: list[Any], data: dict[str, Any]) -> bool:
    for rule in rules:
        if isinstance(rule, tuple) and rule[0] == "exclude_if_fn" and rule[1](data):
            return True
        if isinstance(rule, str) and rule.startswith("exclude_unless:"):
            other, value = rule.split(":", 1)[1].split(",", 1)
            if data.get(other) != value:
                return True
    return False


def check(statement: dict[str, Any], retired: frozenset[str] = frozenset()) -> dict[str, list[str]]:
    """The errors the database answers for one statement ({} when it accepts it).

    retired: categories this database no longer takes (a schema update after our build)."""
    errors: dict[str, list[str]] = {}
    for field, rules in RULES.items():
        if _excluded(rules, statement):
            continue
        present = field in statement
        for rule in rules:
            kind = _kind(rule)
            if not present and kind not in IMPLICIT:
                continue
            if rule == "nullable" or kind.startswith("exclude"):
                continue
            if statement.get(field) is None and "nullable" in rules and kind not in IMPLICIT:
                continue
            msg = _rule(rule, field, statement.get(field), statement)
            if msg:
                errors.setdefault(field, []).append(msg)
                break
    if statement.get("category") in retired:
        errors.setdefault("category", []).append("The selected category is invalid.")
    return errors


Check = Callable[[dict[str, Any]], dict[str, list[str]]]
