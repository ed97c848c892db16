"""The EU DSA statement of reasons, exactly as the Commission's Transparency Database accepts it.

The model is the schema: every enum, length, date range, the ``puid`` format and the conditional
requirements of the database's own validation (``digital-services-act/transparency-database``,
``app/Http/Requests/StatementStoreRequest.php`` and ``app/Models/Statement.php`` at commit
69e80a0b, the schema mandatory since 1 July 2025; the keyword grouping and the date ordering are
from its ``resources/markdown`` API documentation). Where the database silently drops a field
(``exclude_unless``), this model refuses it instead, so what we publish is what we meant.
Building a statement validates it; a second pass is never needed.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

DecisionVisibility = Literal[
    "DECISION_VISIBILITY_CONTENT_REMOVED",
    "DECISION_VISIBILITY_CONTENT_DISABLED",
    "DECISION_VISIBILITY_CONTENT_DEMOTED",
    "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_LABELLED",
    "DECISION_VISIBILITY_OTHER",
]
DecisionMonetary = Literal[
    "DECISION_MONETARY_SUSPENSION", "DECISION_MONETARY_TERMINATION", "DECISION_MONETARY_OTHER"
]
DecisionProvision = Literal[
    "DECISION_PROVISION_PARTIAL_SUSPENSION",
    "DECISION_PROVISION_TOTAL_SUSPENSION",
    "DECISION_PROVISION_PARTIAL_TERMINATION",
    "DECISION_PROVISION_TOTAL_TERMINATION",
]
DecisionAccount = Literal["DECISION_ACCOUNT_SUSPENDED", "DECISION_ACCOUNT_TERMINATED"]
AccountType = Literal["ACCOUNT_TYPE_BUSINESS", "ACCOUNT_TYPE_PRIVATE"]
DecisionGround = Literal["DECISION_GROUND_ILLEGAL_CONTENT", "DECISION_GROUND_INCOMPATIBLE_CONTENT"]
ContentType = Literal[
    "CONTENT_TYPE_APP",
    "CONTENT_TYPE_AUDIO",
    "CONTENT_TYPE_IMAGE",
    "CONTENT_TYPE_PRODUCT",
    "CONTENT_TYPE_SYNTHETIC_MEDIA",
    "CONTENT_TYPE_TEXT",
    "CONTENT_TYPE_VIDEO",
    "CONTENT_TYPE_OTHER",
]
SourceType = Literal[
    "SOURCE_ARTICLE_16",
    "SOURCE_TRUSTED_FLAGGER",
    "SOURCE_TYPE_OTHER_NOTIFICATION",
    "SOURCE_VOLUNTARY",
]
YesNo = Literal["Yes", "No"]
AutomatedDecision = Literal[
    "AUTOMATED_DECISION_FULLY", "AUTOMATED_DECISION_PARTIALLY", "AUTOMATED_DECISION_NOT_AUTOMATED"
]
Category = Literal[
    "STATEMENT_CATEGORY_ANIMAL_WELFARE",
    "STATEMENT_CATEGORY_CONSUMER_INFORMATION",
    "STATEMENT_CATEGORY_CYBER_VIOLENCE",
    "STATEMENT_CATEGORY_CYBER_VIOLENCE_AGAINST_WOMEN",
    "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS",
    "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
    "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS",
    "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
    "STATEMENT_CATEGORY_NOT_SPECIFIED_NOTICE",
    "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
    "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
    "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
    "STATEMENT_CATEGORY_SCAMS_AND_FRAUD",
    "STATEMENT_CATEGORY_SELF_HARM",
    "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS",
    "STATEMENT_CATEGORY_VIOLENCE",
]
CATEGORIES: tuple[str, ...] = get_args(Category)

# category -> its keywords (category_specification), as the API documentation groups them;
# KEYWORD_OTHER ("not captured by any other keyword") and KEYWORD_STALKING (accepted, but in no
# documented group) go with any category
KEYWORDS_OF: dict[str, tuple[str, ...]] = {
    "STATEMENT_CATEGORY_ANIMAL_WELFARE": ("KEYWORD_ANIMAL_HARM", "KEYWORD_UNLAWFUL_SALE_ANIMALS"),
    "STATEMENT_CATEGORY_CONSUMER_INFORMATION": (
        "KEYWORD_HIDDEN_ADVERTISEMENT",
        "KEYWORD_INSUFFICIENT_INFORMATION_ON_TRADERS",
        "KEYWORD_MISLEADING_INFO_GOODS_SERVICES",
        "KEYWORD_MISLEADING_INFO_CONSUMER_RIGHTS",
        "KEYWORD_NONCOMPLIANCE_PRICING",
    ),
    "STATEMENT_CATEGORY_CYBER_VIOLENCE": (
        "KEYWORD_CYBER_BULLYING_INTIMIDATION",
        "KEYWORD_CYBER_HARASSMENT",
        "KEYWORD_CYBER_INCITEMENT",
        "KEYWORD_CYBER_STALKING",
        "KEYWORD_NON_CONSENSUAL_IMAGE_SHARING",
        "KEYWORD_NON_CONSENSUAL_MATERIAL_DEEPFAKE",
    ),
    "STATEMENT_CATEGORY_CYBER_VIOLENCE_AGAINST_WOMEN": (
        "KEYWORD_BULLYING_AGAINST_GIRLS",
        "KEYWORD_CYBER_HARASSMENT_AGAINST_WOMEN",
        "KEYWORD_CYBER_STALKING_AGAINST_WOMEN",
        "KEYWORD_FEMALE_GENDERED_DISINFORMATION",
        "KEYWORD_INCITEMENT_AGAINST_WOMEN",
        "KEYWORD_NON_CONSENSUAL_IMAGE_SHARING_AGAINST_WOMEN",
        "KEYWORD_NON_CONSENSUAL_MATERIAL_DEEPFAKE_AGAINST_WOMEN",
    ),
    "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS": (
        "KEYWORD_BIOMETRIC_DATA_BREACH",
        "KEYWORD_DATA_FALSIFICATION",
        "KEYWORD_MISSING_PROCESSING_GROUND",
        "KEYWORD_RIGHT_TO_BE_FORGOTTEN",
    ),
    "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH": (
        "KEYWORD_DEFAMATION",
        "KEYWORD_DISCRIMINATION",
        "KEYWORD_HATE_SPEECH",
    ),
    "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS": (
        "KEYWORD_COPYRIGHT_INFRINGEMENT",
        "KEYWORD_DESIGN_INFRINGEMENT",
        "KEYWORD_GEOGRAPHIC_INDICATIONS_INFRINGEMENT",
        "KEYWORD_PATENT_INFRINGEMENT",
        "KEYWORD_TRADE_SECRET_INFRINGEMENT",
        "KEYWORD_TRADEMARK_INFRINGEMENT",
    ),
    "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS": (
        "KEYWORD_MISINFORMATION_DISINFORMATION",
        "KEYWORD_VIOLATION_EU_LAW",
        "KEYWORD_VIOLATION_NATIONAL_LAW",
    ),
    "STATEMENT_CATEGORY_NOT_SPECIFIED_NOTICE": (),
    "STATEMENT_CATEGORY_OTHER_VIOLATION_TC": (
        "KEYWORD_ADULT_SEXUAL_MATERIAL",
        "KEYWORD_AGE_SPECIFIC_RESTRICTIONS",
        "KEYWORD_GEOGRAPHICAL_REQUIREMENTS",
        "KEYWORD_GOODS_SERVICES_NOT_PERMITTED",
        "KEYWORD_LANGUAGE_REQUIREMENTS",
        "KEYWORD_NUDITY",
    ),
    "STATEMENT_CATEGORY_PROTECTION_OF_MINORS": (
        "KEYWORD_AGE_SPECIFIC_RESTRICTIONS_MINORS",
        "KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL",
        "KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL_DEEPFAKE",
        "KEYWORD_GROOMING_SEXUAL_ENTICEMENT_MINORS",
        "KEYWORD_UNSAFE_CHALLENGES",
    ),
    "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY": (
        "KEYWORD_ILLEGAL_ORGANIZATIONS",
        "KEYWORD_RISK_ENVIRONMENTAL_DAMAGE",
        "KEYWORD_RISK_PUBLIC_HEALTH",
        "KEYWORD_TERRORIST_CONTENT",
    ),
    "STATEMENT_CATEGORY_SCAMS_AND_FRAUD": (
        "KEYWORD_IMPERSONATION_ACCOUNT_HIJACKING",
        "KEYWORD_INAUTHENTIC_ACCOUNTS",
        "KEYWORD_INAUTHENTIC_LISTINGS",
        "KEYWORD_INAUTHENTIC_USER_REVIEWS",
        "KEYWORD_PHISHING",
        "KEYWORD_PYRAMID_SCHEMES",
    ),
    "STATEMENT_CATEGORY_SELF_HARM": (
        "KEYWORD_CONTENT_PROMOTING_EATING_DISORDERS",
        "KEYWORD_SELF_MUTILATION",
        "KEYWORD_SUICIDE",
    ),
    "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS": (
        "KEYWORD_PROHIBITED_PRODUCTS",
        "KEYWORD_UNSAFE_PRODUCTS",
    ),
    "STATEMENT_CATEGORY_VIOLENCE": (
        "KEYWORD_COORDINATED_HARM",
        "KEYWORD_INCITEMENT_VIOLENCE_HATRED",
        "KEYWORD_HUMAN_EXPLOITATION",
        "KEYWORD_HUMAN_TRAFFICKING",
        "KEYWORD_TRAFFICKING_WOMEN_GIRLS",
    ),
}
ANY_CATEGORY_KEYWORDS: tuple[str, ...] = ("KEYWORD_OTHER", "KEYWORD_STALKING")
KEYWORDS: tuple[str, ...] = (
    tuple(sorted({k for ks in KEYWORDS_OF.values() for k in ks})) + ANY_CATEGORY_KEYWORDS
)
Keyword = Literal[KEYWORDS]  # type: ignore[valid-type]

EU_COUNTRIES: tuple[str, ...] = (
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
)  # fmt: skip
EEA_COUNTRIES: tuple[str, ...] = tuple(sorted((*EU_COUNTRIES, "IS", "LI", "NO")))
Country = Literal[EEA_COUNTRIES]  # type: ignore[valid-type]

FIRST_CONTENT_DATE = "2000-01-01"
FIRST_APPLICATION_DATE = "2020-01-01"
LAST_DATE = "2038-01-01"


def expand_scope(codes: list[str]) -> list[str]:
    """Territorial scope as the API wants it: ISO codes, with "EU" / "EEA" spelled out.

    Raises ValueError naming the codes the database would refuse (it accepts the EEA's 30)."""
    out: set[str] = set()
    for c in codes:
        c = c.strip().upper()
        out.update(EU_COUNTRIES if c == "EU" else EEA_COUNTRIES if c == "EEA" else (c,))
    bad = sorted(out - set(EEA_COUNTRIES))
    if bad:
        raise ValueError(
            f"territorial scope {bad} is not accepted by the DSA Transparency Database: use "
            f"ISO codes of EU/EEA countries ({', '.join(EEA_COUNTRIES)}), or EU or EEA"
        )
    return sorted(out)


def _date(first: str) -> Any:
    def check(v: str) -> str:
        try:
            ok = dt.date.fromisoformat(v).isoformat() == v  # also refuses 2025-02-30, 2025-1-5
        except ValueError:
            ok = False
        if not ok:
            raise ValueError("expected a real date as YYYY-MM-DD")
        if not first <= v <= LAST_DATE:
            raise ValueError(f"date must be between {first} and {LAST_DATE}")
        return v

    return Annotated[
        str,
        Field(pattern=r"^\d{4}-\d{2}-\d{2}$", json_schema_extra={"format": "date"}),
        AfterValidator(check),
    ]


ContentDate = _date(FIRST_CONTENT_DATE)
ApplicationDate = _date(FIRST_APPLICATION_DATE)
EndDate = _date("0000-00-00")  # the database checks only the upper bound (and the format)


def _text(max_len: int) -> Any:
    """A free-text field: not blank (Laravel's `required` refuses whitespace) and at most
    max_len characters (Laravel counts characters, as Python does)."""
    return Annotated[str, Field(min_length=1, max_length=max_len, pattern=r"\S")]


Text500 = _text(500)
Text2000 = _text(2000)
Text5000 = _text(5000)
Puid = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[a-zA-Z0-9_-]+$")]
_ALLOWED_KEYWORDS = {c: frozenset(k + ANY_CATEGORY_KEYWORDS) for c, k in KEYWORDS_OF.items()}


def _pair(field: str, value: str | None, chosen: bool, where: str, choice: str) -> None:
    """An "..._other" text: required when its choice is made, refused otherwise (the
    database would drop it silently)."""
    if chosen and value is None:
        raise ValueError(f"{field} is required when {where} is {choice}")
    if value is not None and not chosen:
        raise ValueError(f"{field} is only allowed when {where} is {choice}")


def _conditional_schema(schema: dict[str, Any]) -> None:
    """The conditional rules in the published JSON Schema too (what JSON Schema can say; the
    date order and keyword-category membership are checked by the model only). Optional
    fields serialise as null, so "absent" is written as type null."""
    text, null = {"type": "string"}, {"type": "null"}

    def when(cond: dict[str, Any], need: list[str], ban: list[str]) -> dict[str, Any]:
        return {
            "if": cond,
            "then": {
                "required": need,
                "properties": {**{f: text for f in need}, **{f: null for f in ban}},
            },
        }

    def other(field: str, where: str, choice: str, is_list: bool) -> dict[str, Any]:
        test = {"contains": {"const": choice}} if is_list else {"const": choice}
        return {
            "if": {"required": [where], "properties": {where: test}},
            "then": {"required": [field], "properties": {field: text}},
            "else": {"properties": {field: null}},
        }

    illegal = ["illegal_content_legal_ground", "illegal_content_explanation"]
    incompatible = ["incompatible_content_ground", "incompatible_content_explanation"]
    schema["allOf"] = [
        {"anyOf": [
            {"required": ["decision_visibility"], "properties": {"decision_visibility": {"minItems": 1}}},
            *({"required": [f], "properties": {f: text}}
              for f in ("decision_monetary", "decision_provision", "decision_account")),
        ]},
        when({"properties": {"decision_ground": {"const": "DECISION_GROUND_ILLEGAL_CONTENT"}}},
             illegal, [*incompatible, "incompatible_content_illegal"]),
        when({"properties": {"decision_ground": {"const": "DECISION_GROUND_INCOMPATIBLE_CONTENT"}}},
             incompatible, illegal),
        other("decision_visibility_other", "decision_visibility", "DECISION_VISIBILITY_OTHER", True),
        other("decision_monetary_other", "decision_monetary", "DECISION_MONETARY_OTHER", False),
        other("content_type_other", "content_type", "CONTENT_TYPE_OTHER", True),
        other("category_specification_other", "category_specification", "KEYWORD_OTHER", True),
        {"if": {"properties": {"source_type": {"const": "SOURCE_VOLUNTARY"}}},
         "then": {"properties": {"source_identity": null}}},
    ]  # fmt: skip


class StatementOfReasons(BaseModel):
    """One statement of reasons (Art. 17/24(5) DSA) as the Transparency Database API takes it."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_conditional_schema)

    # what was restricted: at least one of the four
    decision_visibility: list[DecisionVisibility] = Field(default_factory=list)
    decision_visibility_other: Text500 | None = None
    decision_monetary: DecisionMonetary | None = None
    decision_monetary_other: Text500 | None = None
    decision_provision: DecisionProvision | None = None
    decision_account: DecisionAccount | None = None
    account_type: AccountType | None = None
    # why
    decision_ground: DecisionGround
    decision_ground_reference_url: (
        Annotated[str, Field(max_length=500, pattern=r"^https?://[^\s/$.?#][^\s]*$")] | None
    ) = None
    illegal_content_legal_ground: Text500 | None = None
    illegal_content_explanation: Text2000 | None = None
    incompatible_content_ground: Text500 | None = None
    incompatible_content_explanation: Text2000 | None = None
    incompatible_content_illegal: YesNo | None = None
    category: Category
    category_addition: list[Category] = Field(default_factory=list)
    category_specification: list[Keyword] = Field(default_factory=list)  # type: ignore[valid-type]
    category_specification_other: Text500 | None = None
    # what content, when, where
    content_type: list[ContentType] = Field(
        default_factory=lambda: ["CONTENT_TYPE_VIDEO"], min_length=1
    )
    content_type_other: Text500 | None = None
    content_language: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    content_date: ContentDate
    application_date: ApplicationDate
    end_date_visibility_restriction: EndDate | None = None
    end_date_monetary_restriction: EndDate | None = None
    end_date_service_restriction: EndDate | None = None
    end_date_account_restriction: EndDate | None = None
    territorial_scope: list[Country] = Field(min_length=1)  # type: ignore[valid-type]
    # how it was decided
    decision_facts: Text5000
    source_type: SourceType
    source_identity: Text500 | None = None
    automated_detection: YesNo
    automated_decision: AutomatedDecision
    puid: Puid = Field(description="platform unique id: one statement per puid, ever")

    @model_validator(mode="after")
    def _conditional(self) -> StatementOfReasons:
        """The database's required_without_all / required_if / exclude_unless rules (written
        out flat: this runs for every block on the worker's hot path)."""
        if not (
            self.decision_visibility
            or self.decision_monetary
            or self.decision_provision
            or self.decision_account
        ):
            raise ValueError(
                "one of decision_visibility, decision_monetary, decision_provision or "
                "decision_account is required"
            )
        _pair("decision_visibility_other", self.decision_visibility_other,
              "DECISION_VISIBILITY_OTHER" in self.decision_visibility,
              "decision_visibility", "DECISION_VISIBILITY_OTHER")  # fmt: skip
        _pair("decision_monetary_other", self.decision_monetary_other,
              self.decision_monetary == "DECISION_MONETARY_OTHER",
              "decision_monetary", "DECISION_MONETARY_OTHER")  # fmt: skip
        _pair("content_type_other", self.content_type_other,
              "CONTENT_TYPE_OTHER" in self.content_type, "content_type", "CONTENT_TYPE_OTHER")  # fmt: skip
        _pair("category_specification_other", self.category_specification_other,
              "KEYWORD_OTHER" in self.category_specification,
              "category_specification", "KEYWORD_OTHER")  # fmt: skip
        illegal = self.decision_ground == "DECISION_GROUND_ILLEGAL_CONTENT"
        for name, value, needed in (
            ("illegal_content_legal_ground", self.illegal_content_legal_ground, illegal),
            ("illegal_content_explanation", self.illegal_content_explanation, illegal),
            ("incompatible_content_ground", self.incompatible_content_ground, not illegal),
            (
                "incompatible_content_explanation",
                self.incompatible_content_explanation,
                not illegal,
            ),
        ):
            if needed != (value is not None):
                raise ValueError(
                    f"{name} is {'required' if needed else 'only allowed'} when decision_ground "
                    f"is {self.decision_ground if needed else 'the other ground'}"
                )
        if illegal and self.incompatible_content_illegal is not None:
            raise ValueError(
                "incompatible_content_illegal is only allowed when decision_ground is "
                "DECISION_GROUND_INCOMPATIBLE_CONTENT"
            )
        if self.source_type == "SOURCE_VOLUNTARY" and self.source_identity is not None:
            raise ValueError("source_identity is not allowed when source_type is SOURCE_VOLUNTARY")
        for name, end in (
            ("end_date_visibility_restriction", self.end_date_visibility_restriction),
            ("end_date_monetary_restriction", self.end_date_monetary_restriction),
            ("end_date_service_restriction", self.end_date_service_restriction),
            ("end_date_account_restriction", self.end_date_account_restriction),
        ):
            if end is not None and end < self.application_date:
                raise ValueError(f"{name} {end} is before application_date")
        if self.category_specification:
            allowed = _ALLOWED_KEYWORDS[self.category]
            for c in self.category_addition:
                allowed = allowed | _ALLOWED_KEYWORDS[c]
            stray = [k for k in self.category_specification if k not in allowed]
            if stray:
                raise ValueError(
                    f"category_specification {stray} do not belong to category "
                    f"{self.category} or category_addition"
                )
        for name, values in (
            ("category_specification", self.category_specification),
            ("category_addition", self.category_addition),
            ("territorial_scope", self.territorial_scope),
        ):
            if len(values) > 1 and len(set(values)) != len(values):
                raise ValueError(f"{name} lists a value twice")
        return self

    def to_api(self) -> dict[str, Any]:
        """The JSON body the database takes for this statement (unset optionals left out)."""
        return self.model_dump(mode="json", exclude_none=True)
