"""The routing file: which records go to which sinks, validated at start with line numbers.

Format (see deploy/alerts.example.yaml)::

    sinks:
      NAME: {type: pagerduty|slack|webhook, url: ..., routing_key: ..., secret: ..., timeout_s: 5}
    routes:
      - name: red-line
        match: {types: [alert], severity: [critical], category_prefix: [csam], red_line: true}
        sinks: [oncall]
        escalation: [oncall-secondary, [oncall-manager, slack]]   # tier 1, tier 2, ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from framewatch import records, yamlfile
from framewatch.errors import FramewatchError

RecordType = Literal["alert", "enforcement", "decision", "review"]
Routable = records.Alert | records.Enforcement | records.Decision | records.ReviewOutcome


class RoutingError(FramewatchError):
    """The routing file is missing or invalid; the message names the file, line and field."""


class Sink(BaseModel):
    """Where deliveries go. `secret` signs webhooks; `routing_key` is PagerDuty's integration key."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = ""
    type: Literal["pagerduty", "slack", "webhook"]
    url: str = Field(pattern=r"^https?://")
    routing_key: str | None = None
    secret: str | None = None
    timeout_s: float | None = Field(
        None, gt=0, description="request timeout; default from settings"
    )
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _needs(self) -> Sink:
        if self.type == "pagerduty" and not self.routing_key:
            raise ValueError("a pagerduty sink needs routing_key (the integration key)")
        if self.type == "webhook" and not self.secret:
            raise ValueError("a webhook sink needs secret (receivers verify the signature)")
        if "@" in urlsplit(self.url).netloc and any(
            h.lower() == "authorization" for h in self.headers
        ):
            raise ValueError(
                "url carries user:password@ and headers has Authorization: HTTP sends only one; "
                "keep one of them (the header, or credentials in the URL)"
            )
        return self


class Match(BaseModel):
    """Every given condition must hold; an empty match takes every record."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    types: list[RecordType] = Field(default_factory=lambda: ["alert"])
    severity: list[Literal["critical", "high", "medium", "low", "info"]] | None = None
    category_prefix: list[str] | None = None
    tenant: list[str] | None = None
    red_line: bool | None = None
    appeal: bool | None = Field(
        None,
        description="true: only reviewers' verdicts on user appeals (records of type review "
        "with an appeal_id); false: only other records",
    )

    def matches(self, rec: Routable) -> bool:
        if rec.TYPE not in self.types:
            return False
        if self.tenant is not None and rec.tenant not in self.tenant:
            return False
        if self.appeal is not None and (getattr(rec, "appeal_id", None) is not None) != self.appeal:
            return False
        if isinstance(rec, records.Alert):
            severity, red, cats = rec.severity, rec.red_line, [rec.category]
        elif isinstance(rec, records.Decision):
            severity, red = None, rec.red_line
            cats = [r.category for r in rec.reasons]
        elif isinstance(rec, records.ReviewOutcome):
            severity, red, cats = None, None, [rec.category] if rec.category else []
        else:
            severity, red, cats = None, None, list(rec.strikes)
        if self.severity is not None and severity not in self.severity:
            return False
        if self.red_line is not None and red != self.red_line:
            return False
        if self.category_prefix is not None:
            return any(c == p or c.startswith(p + ".") for c in cats for p in self.category_prefix)
        return True


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    match: Match = Field(default_factory=Match)
    sinks: list[str] = Field(min_length=1)
    escalation: list[list[str]] = Field(
        default_factory=list, description="tiers paged in turn while a red-line alert is unacked"
    )

    @field_validator("escalation", mode="before")
    @classmethod
    def _tiers(cls, v: Any) -> Any:
        return [[t] if isinstance(t, str) else t for t in v] if isinstance(v, list) else v


class Routing(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    sinks: dict[str, Sink] = Field(min_length=1)
    routes: list[Route] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _name_sinks(cls, v: Any) -> Any:
        if isinstance(v, dict) and isinstance(v.get("sinks"), dict):
            v = dict(v)
            v["sinks"] = {
                n: ({**s, "name": n} if isinstance(s, dict) else s) for n, s in v["sinks"].items()
            }
        return v

    @model_validator(mode="after")
    def _refs(self) -> Routing:
        names = set()
        for i, r in enumerate(self.routes):
            if r.name in names:
                raise ValueError(f"routes[{i}]: route name {r.name!r} is used twice")
            names.add(r.name)
            for s in r.sinks + [s for tier in r.escalation for s in tier]:
                if s not in self.sinks:
                    raise ValueError(
                        f"route {r.name!r} names sink {s!r}, which is not under sinks: "
                        f"(known: {', '.join(sorted(self.sinks))})"
                    )
        return self

    def routes_for(self, rec: Routable) -> list[Route]:
        return [r for r in self.routes if r.match.matches(rec)]

    def route(self, name: str) -> Route:
        for r in self.routes:
            if r.name == name:
                return r
        raise RoutingError(
            f"no route named {name!r}; routes: {', '.join(r.name for r in self.routes)}"
        )

    def wanted_types(self) -> set[str]:
        return {t for r in self.routes for t in r.match.types}


def parse(raw: str | bytes, source: str = "<routing>") -> Routing:
    """Validate routing YAML; every problem names the file, line and field."""
    try:
        doc = yamlfile.loads(source, raw)
    except yamlfile.YamlFileError as exc:
        raise RoutingError(str(exc)) from None
    data = doc.data
    if not isinstance(data, dict):
        raise RoutingError(f"{source}: expected a mapping with 'sinks:' and 'routes:'")
    try:
        return Routing.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if p not in ("function-after", "function-before"))
            where = ".".join(str(p) for p in loc) or "(top level)"
            lines.append(f"{source}:{doc.line(loc) or '?'}: {where}: {err['msg']}")
        raise RoutingError("invalid routing file:\n  " + "\n  ".join(lines)) from None


def load(path: Path) -> Routing:
    if not path.is_file():
        raise RoutingError(
            f"routing file {path} does not exist: copy deploy/alerts.example.yaml there or set "
            "FRAMEWATCH_ALERTS__ROUTING_FILE"
        )
    return parse(path.read_bytes(), str(path))
