"""OpenAI's moderation API (omni-moderation), field by field: inputs in, results out.

Pure functions; `scoring/api.py` does the HTTP. The request and answer follow OpenAI's API
reference and the official `openai` SDK's types (tests validate them strictly):

* ``input`` is a string, a list of strings (one result each), or a list of parts
  (``{"type": "text", "text"}`` / ``{"type": "image_url", "image_url": {"url"}}``) that make
  ONE input and get one result combining its parts. A single part object is one input too.
* Each result has the 13 categories in ``categories`` and ``category_scores``,
  ``category_applied_input_types`` (which input types the score came from) and ``flagged``,
  true exactly when some category is. OpenAI scores some categories on text only (harassment,
  hate, illicit, sexual/minors); an image adds to the categories OpenAI scores on images
  (self-harm, sexual, violence), so a child-safety image flags ``sexual``.
* A category is true when one of its taxonomy nodes reaches the review threshold of the
  tenant's and channel's policy (the streams worker's rules), or a hash bank of it matched.
* Our own fields (the policy decision, taxonomy scores, matches, text findings) are under
  ``framewatch`` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from framewatch.policy import Policy, explain
from scoring.errors import ScoringError

TEXT, IMAGE = "text", "image"
# OpenAI category -> (input types OpenAI scores it on, taxonomy nodes that feed it)
CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "harassment": ((TEXT,), ()),
    "harassment/threatening": ((TEXT,), ()),
    "hate": ((TEXT,), ("hate",)),
    "hate/threatening": ((TEXT,), ()),
    "illicit": ((TEXT,), ("drugs",)),
    "illicit/violent": ((TEXT,), ()),
    "self-harm": ((TEXT, IMAGE), ("self_harm",)),
    "self-harm/instructions": ((TEXT, IMAGE), ()),
    "self-harm/intent": ((TEXT, IMAGE), ()),
    "sexual": (
        (TEXT, IMAGE),
        (
            "sexual",
            "suggestive.covered",
            "child_safety",
            "known_bad.csam_bank",
            "known_bad.ncii_bank",
        ),
    ),
    "sexual/minors": ((TEXT,), ("child_safety", "known_bad.csam_bank")),
    "violence": ((TEXT, IMAGE), ("violence", "terrorism", "known_bad.terror_bank")),
    "violence/graphic": (
        (TEXT, IMAGE),
        ("violence.gore", "violence.graphic", "terrorism.attack_footage"),
    ),
}


class InputError(ScoringError):
    """A request OpenAI's API would refuse; `param` names the offending field."""

    def __init__(self, message: str, param: str | None = "input") -> None:
        super().__init__(message)
        self.param = param


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ImageUrl(_Strict):
    url: str = Field(min_length=1, description="https:// or data: URL")


class ImagePart(_Strict):
    type: Literal["image_url"]
    image_url: ImageUrl | Annotated[str, Field(min_length=1)]


PartIn = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ModerationRequest(_Strict):
    """The body of ``POST /v1/moderations``, as OpenAI's API reference has it: ``parse`` accepts
    what this model accepts, and the OpenAPI document is generated from it."""

    model: str | None = None
    input: (
        str
        | PartIn
        | Annotated[list[str], Field(min_length=1)]
        | Annotated[list[PartIn], Field(min_length=1)]
    )


@dataclass(frozen=True)
class Part:
    kind: str  # text | image
    value: str  # the text, or the image URL


def _part(p: Any, where: str, max_chars: int) -> Part:
    if isinstance(p, dict) and p.get("type") == "text":
        t = p.get("text")
        if not isinstance(t, str):
            raise InputError(f"{where}.text must be a string", where)
        return _text(t, where, max_chars)
    if isinstance(p, dict) and p.get("type") == "image_url":
        iu = p.get("image_url")
        url = iu.get("url") if isinstance(iu, dict) else iu
        if not isinstance(url, str) or not url:
            raise InputError(
                f'{where}.image_url must be {{"url": "https://... or data:..."}}', where
            )
        return Part(IMAGE, url)
    raise InputError(f'{where} must be {{"type": "text", "text": ...}} or '
                     '{"type": "image_url", "image_url": {"url": ...}}', where)  # fmt: skip


def _text(t: str, where: str, max_chars: int) -> Part:
    if len(t) > max_chars:
        raise InputError(f"{where} is {len(t)} characters; at most {max_chars} (send less)", where)
    return Part(TEXT, t)


def parse(body: Any, max_parts: int, max_chars: int) -> list[list[Part]]:
    """The request's inputs, each a list of parts; InputError as OpenAI would answer 400."""
    if not isinstance(body, dict) or "input" not in body:
        raise InputError("'input' is required: a string, a list of strings, or a list of "
                         "text / image_url parts")  # fmt: skip
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise InputError("'model' must be a string", "model")
    raw = body["input"]
    if isinstance(raw, str):
        inputs = [[_text(raw, "input", max_chars)]]
    elif isinstance(raw, dict):
        inputs = [[_part(raw, "input", max_chars)]]
    elif isinstance(raw, list) and raw and all(isinstance(x, str) for x in raw):
        if len(raw) > max_parts:
            raise InputError(f"{len(raw)} inputs; at most {max_parts} a request (split it)")
        inputs = [[_text(x, f"input[{i}]", max_chars)] for i, x in enumerate(raw)]
    elif isinstance(raw, list) and raw and all(isinstance(x, dict) for x in raw):
        if len(raw) > max_parts:
            raise InputError(f"{len(raw)} parts; at most {max_parts} a request (split it)")
        inputs = [[_part(x, f"input[{i}]", max_chars) for i, x in enumerate(raw)]]
    else:
        raise InputError("'input' must be a string, a non-empty list of strings, or a "
                         "non-empty list of text / image_url parts (not a mix)")  # fmt: skip
    try:  # nothing the document does not describe (an unknown field, a part's extra key)
        ModerationRequest.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err["loc"] or ("input",)
        raise InputError(f"{loc[-1]!r}: {err['msg']}", str(loc[0])) from None
    return inputs


def _under(path: str, nodes: tuple[str, ...]) -> bool:
    return any(path == n or path.startswith(n + ".") for n in nodes)


def result(
    parts: list[tuple[str, dict[str, Any]]],
    policy: Policy,
    tenant: str | None,
    channel: str | None,
    ours: dict[str, Any],
) -> dict[str, Any]:
    """One OpenAI ``Moderation`` object for one input of (kind, check result) parts."""
    scores = dict.fromkeys(CATEGORIES, 0.0)
    cats = dict.fromkeys(CATEGORIES, False)
    for kind, checked in parts:
        rows = [r for r in explain(policy, checked["scores"], tenant, channel)
                if r["verdict"] != "unknown"]  # fmt: skip
        rows += [{"category": m["category"], "score": 1.0, "verdict": "block"}
                 for m in checked["hash_matches"]]  # fmt: skip
        for r in rows:
            for name, (types, nodes) in CATEGORIES.items():
                if kind in types and _under(r["category"], nodes):
                    scores[name] = max(scores[name], float(r["score"]))
                    cats[name] = cats[name] or r["verdict"] in ("review", "block")
    kinds = {k for k, _ in parts}
    applied = {name: [t for t in (TEXT, IMAGE) if t in kinds and t in types]
               for name, (types, _) in CATEGORIES.items()}  # fmt: skip
    return {"flagged": any(cats.values()), "categories": cats, "category_scores": scores,
            "category_applied_input_types": applied, "framewatch": ours}  # fmt: skip
