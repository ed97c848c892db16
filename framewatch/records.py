"""The records on every topic: one module, each type versioned.

JSON records (scores, decision, enforcement, alert, review, audit, dead-letter) are UTF-8 JSON
objects that carry ``type`` and ``v``. A frame is a compact binary envelope so the thumbnail JPEG
travels as raw bytes (never base64 on the hot path)::

    b"FWF" | version:u8 | meta_len:u32 big-endian | meta JSON (meta_len bytes) | JPEG bytes

Decoding anything malformed, of another type, or of a version this code does not know raises
:class:`RecordDecodeError`, which consumers turn into a dead-letter record.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import struct
import time
import uuid
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
)

from framewatch.dsa import StatementOfReasons
from framewatch.errors import RecordDecodeError
from framewatch.fields import STRICT, CategoryPath, Epoch, PdqHex, Score

FRAME_MAGIC = b"FWF"
_FRAME_HEADER = struct.Struct(">3sBI")
MAX_RECORD_BYTES = 16 * 1024 * 1024


def new_id() -> str:
    """A random, sortable-enough id for frames, incidents and records."""
    return uuid.uuid4().hex


def stable_id(*parts: object) -> str:
    """A deterministic id from its parts, so a replay produces the same id (idempotency key)."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]


def now() -> float:
    return time.time()


class _Record(BaseModel):
    """Base of every record: strict (unknown fields, NaN and inf refused), frozen, versioned."""

    model_config = STRICT
    TYPE: ClassVar[str]
    VERSION: ClassVar[int]
    READS: ClassVar[frozenset[int]] = frozenset()

    @classmethod
    def reads(cls, version: object) -> bool:
        ok = isinstance(version, int) and not isinstance(version, bool)
        return ok and (version == cls.VERSION or version in cls.READS)


# --------------------------------------------------------------------------------------------
# frame


SampleReason = Literal[
    "first", "interval", "keyframe", "scene_cut", "heartbeat", "hot", "push", "test"
]


SessionId = Annotated[str | None, Field(max_length=64, description="this life of the stream "
                      "(a publisher back under the same id starts a new one); absent in v1")]  # fmt: skip


class Frame(_Record):
    """One sampled frame of a stream, produced by ingest to the frames topic
    (key: ``scope.stream``, i.e. tenant/stream_id). v2 added ``session``."""

    TYPE: ClassVar[str] = "frame"
    VERSION: ClassVar[int] = 2
    READS: ClassVar[frozenset[int]] = frozenset({1})

    frame_id: str
    stream_id: str
    account_id: str
    tenant: str = "default"
    channel: str | None = Field(None, description="channel type for policy, e.g. kids, gaming")
    session: SessionId = None
    seq: int = Field(ge=0, description="sample number of the stream (diagnostic; replays are "
                     "recognised by frame_id, never by seq)")  # fmt: skip
    pts: float = Field(description="presentation time in seconds from stream start")
    captured_at: Epoch = Field(description="wall-clock capture time, epoch seconds")
    sample_reason: SampleReason
    width: int = Field(ge=0, description="width of the source frame")
    height: int = Field(ge=0, description="height of the source frame")
    pdq: PdqHex | None = None
    pdq_quality: int | None = Field(None, ge=0, le=100)
    jpeg: bytes = Field(repr=False, description="thumbnail JPEG, raw bytes")

    def encode(self) -> bytes:
        meta = self.model_dump(mode="json", exclude={"jpeg"})
        meta["type"], meta["v"] = self.TYPE, self.VERSION
        blob = json.dumps(meta, separators=(",", ":"), allow_nan=False).encode()
        return _FRAME_HEADER.pack(FRAME_MAGIC, self.VERSION, len(blob)) + blob + self.jpeg


# --------------------------------------------------------------------------------------------
# scores


class HashMatch(BaseModel):
    model_config = STRICT
    bank: str
    entry_id: str
    distance: int = Field(ge=0, le=256)
    threshold: int = Field(ge=0, le=256)
    role: Literal["red_line", "review"]
    category: CategoryPath


class TextFinding(BaseModel):
    model_config = STRICT
    kind: Literal["url", "phone", "handle", "solicitation", "keyword", "qr", "barcode", "text"]
    text: str
    category: CategoryPath | None = None
    box: tuple[float, float, float, float] | None = Field(None, description="x0,y0,x1,y1 0..1")


class Detection(BaseModel):
    model_config = STRICT
    label: str
    category: CategoryPath | None
    score: Score
    box: tuple[float, float, float, float] = Field(description="x0,y0,x1,y1 normalised 0..1")
    model: str


class Scores(_Record):
    """What the scorer found in one frame (topic scores, key: tenant/stream_id).
    v2 added ``session`` (copied from the frame)."""

    TYPE: ClassVar[str] = "scores"
    VERSION: ClassVar[int] = 2
    READS: ClassVar[frozenset[int]] = frozenset({1})

    frame_id: str
    stream_id: str
    account_id: str
    tenant: str = "default"
    channel: str | None = None
    session: SessionId = None
    seq: int = Field(ge=0)
    captured_at: Epoch
    scored_at: Epoch
    scores: dict[CategoryPath, Score] = Field(default_factory=dict)
    models: dict[CategoryPath, str] = Field(
        default_factory=dict, description="category -> 'model@version' that produced its score"
    )
    hash_matches: list[HashMatch] = Field(default_factory=list)
    text: list[TextFinding] = Field(default_factory=list)
    detections: list[Detection] = Field(default_factory=list)
    pdq: PdqHex | None = None
    pdq_quality: int | None = Field(None, ge=0, le=100)
    cached: bool = Field(False, description="scores came from the score cache")
    timings_ms: dict[str, float] = Field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# decision


class Reason(BaseModel):
    model_config = STRICT
    category: CategoryPath
    score: Score
    threshold: Score
    frames_seen: int = Field(ge=0, description="frames above threshold in the window")
    frames_window: int = Field(ge=0, description="frames in the smoothing window")
    rule: str = Field(description="which policy rule fired, e.g. 'default:sexual.explicit'")
    source: Literal["model", "hash_bank", "text", "review"] = "model"


class Decision(_Record):
    """A transition of a stream's state (topic decisions, key: stream_id)."""

    TYPE: ClassVar[str] = "decision"
    VERSION: ClassVar[int] = 1

    decision_id: str = Field(description="deterministic: (stream, transition, first frame)")
    stream_id: str
    account_id: str
    tenant: str = "default"
    channel: str | None = None
    action: Literal["block", "review", "allow"]
    previous_state: Literal["ok", "review", "blocked"]
    reasons: list[Reason] = Field(default_factory=list)
    red_line: bool = False
    policy_version: str
    evidence_frame_ids: list[str] = Field(default_factory=list)
    first_frame_id: str
    captured_at: Epoch = Field(description="capture time of the frame that triggered it")
    decided_at: Epoch
    statement: StatementOfReasons | None = None
    corrects: str | None = Field(None, description="decision_id this one corrects (appeals)")


# --------------------------------------------------------------------------------------------
# enforcement


EnforcementAction = Literal["none", "warn", "restrict", "suspend_stream", "suspend_account"]


class Enforcement(_Record):
    """An account-level step on the strike ladder (topic enforcement, key: account_id)."""

    TYPE: ClassVar[str] = "enforcement"
    VERSION: ClassVar[int] = 1

    enforcement_id: str
    account_id: str
    tenant: str = "default"
    action: EnforcementAction
    previous_action: EnforcementAction = "none"
    ladder_step: int = Field(ge=0)
    strikes: dict[CategoryPath, float] = Field(default_factory=dict)
    strike_total: float = 0.0
    decision_ids: list[str] = Field(default_factory=list)
    policy_version: str
    issued_at: Epoch
    statement: StatementOfReasons | None = None
    reverses: str | None = Field(None, description="enforcement_id this one reverses")


# --------------------------------------------------------------------------------------------
# alert


class Alert(_Record):
    """A page for on-call people (topic alerts, key: incident_id)."""

    TYPE: ClassVar[str] = "alert"
    VERSION: ClassVar[int] = 1

    incident_id: str
    kind: Literal["trigger", "resolve"] = "trigger"
    severity: Literal["critical", "high", "medium", "low", "info"]
    category: CategoryPath
    red_line: bool
    stream_id: str
    account_id: str
    tenant: str = "default"
    decision_id: str | None = None
    evidence_frame_ids: list[str] = Field(default_factory=list)
    summary: str = Field(description="one-line rationale a human can act on")
    runbook_url: str | None = None
    captured_at: Epoch
    raised_at: Epoch
    test: bool = Field(False, description="a clearly-marked test alert (framewatch alerts test)")


# --------------------------------------------------------------------------------------------
# review outcome, audit, dead letter


class ReviewOutcome(_Record):
    """A human reviewer's verdict on a decision (topic reviews, key: tenant/stream_id). v2 added
    ``escalated`` (a red line: block and page) and ``appeal_id``; v1 readers refuse v2."""

    TYPE: ClassVar[str] = "review"
    VERSION: ClassVar[int] = 2
    READS: ClassVar[frozenset[int]] = frozenset({1})

    review_id: str
    decision_id: str
    stream_id: str
    account_id: str
    tenant: str = "default"
    outcome: Literal["upheld", "overturned", "escalated"]
    action: Literal["block", "review"] | None = Field(None, description="the reviewed decision's")
    category: CategoryPath | None = Field(
        None, description="the reviewed decision's top category (per-category precision)"
    )
    reviewer: str | None = None
    note: str | None = None
    appeal_id: str | None = Field(None, max_length=100, description="the appeal it decides")
    resolved_at: Epoch

    @property
    def verdict(self) -> Literal["upheld", "overturned"]:
        """For precision: an escalation upholds the decision (if anything it was lenient)."""
        return "overturned" if self.outcome == "overturned" else "upheld"


class AccountForget(_Record):
    """An erasure request (topic reviews, key: tenant/account_id): the worker deletes the
    account's ledger, the console its notes and appeals (streams/cli_forget.py)."""

    TYPE: ClassVar[str] = "forget"
    VERSION: ClassVar[int] = 1
    forget_id: str
    tenant: str = "default"
    account_id: str
    requested_by: str | None = None
    requested_at: Epoch


class EvidencePinned(_Record):
    """A decision's evidence was pinned: the manifest's SHA-256 (names each frame's) is custody."""

    TYPE: ClassVar[str] = "evidence"
    VERSION: ClassVar[int] = 1
    decision_id: str
    account_id: str
    tenant: str = "default"
    manifest_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    legal_hold: bool = False
    expires_at: float | None = None
    pinned_at: float


class AuditEntry(_Record):
    """One link of the tamper-evident chain (topic audit): hash of the previous link + body."""

    TYPE: ClassVar[str] = "audit"
    VERSION: ClassVar[int] = 1

    seq: int = Field(ge=0)
    prev_hash: str
    hash: str
    record_type: str
    record: dict[str, Any]
    written_at: Epoch


class DeadLetter(_Record):
    """What a consumer could not process, and why (topic dead-letters)."""

    TYPE: ClassVar[str] = "dead_letter"
    VERSION: ClassVar[int] = 1

    stage: str
    reason: str = Field(description="short code, e.g. malformed, bad_jpeg, delivery_failed")
    error: str = Field(description="the human-readable error")
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    key: str | None = None
    payload: bytes | None = Field(
        None, description="the original bytes (their first dead_letters.payload_max_bytes), base64"
    )
    payload_size: int | None = Field(None, ge=0, description="size of the original bytes")
    payload_sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the original bytes (hex)"
    )
    payload_truncated: bool = Field(False, description="payload holds only the first bytes")
    failed_at: Epoch

    @field_serializer("payload", when_used="json")
    def _payload_b64(self, v: bytes | None) -> str | None:
        return base64.b64encode(v).decode() if v is not None else None

    @field_validator("payload", mode="before")
    @classmethod
    def _payload_from_b64(cls, v: object) -> object:
        if isinstance(v, str):
            try:
                return base64.b64decode(v, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"payload is not base64: {exc}") from None
        return v


# --------------------------------------------------------------------------------------------
# encode / decode

JSON_RECORDS: dict[str, type[_Record]] = {
    cls.TYPE: cls
    for cls in (Scores, Decision, Enforcement, Alert, ReviewOutcome, AuditEntry, DeadLetter)
}
JSON_RECORDS[EvidencePinned.TYPE] = EvidencePinned
JSON_RECORDS[AccountForget.TYPE] = AccountForget
ALL_RECORDS: dict[str, type[_Record]] = {"frame": Frame, **JSON_RECORDS}
DOWNSTREAM_RECORDS = ("scores", "decision", "enforcement", "alert")

R = TypeVar("R", bound=_Record)


def encode(record: _Record) -> bytes:
    """Bytes for a Kafka message value."""
    if isinstance(record, Frame):
        return record.encode()
    body = record.model_dump(mode="json")
    body = {"type": record.TYPE, "v": record.VERSION, **body}
    # allow_nan=False: a NaN that slipped past a model (inside AuditEntry.record) fails here,
    # loudly, instead of reaching a receiver as the invalid JSON literal NaN
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def decode(data: bytes | bytearray | memoryview | None, expect: type[R] | None = None) -> R:
    """Parse a message value; raises RecordDecodeError for anything it cannot read.

    With ``expect`` the record must be of that type (a consumer reads one topic's type).
    """
    if data is None:
        raise RecordDecodeError("malformed", "empty message (tombstone or null value)")
    data = bytes(data)
    if len(data) > MAX_RECORD_BYTES:
        raise RecordDecodeError(
            "malformed", f"record of {len(data)} bytes exceeds the {MAX_RECORD_BYTES} byte cap"
        )
    if data[:3] == FRAME_MAGIC:
        record: _Record = _decode_frame(data)
    else:
        record = _decode_json(data)
    if expect is not None and not isinstance(record, expect):
        raise RecordDecodeError(
            "unknown_type", f"expected a {expect.TYPE} record, got a {record.TYPE} record"
        )
    return record  # type: ignore[return-value]


def _decode_frame(data: bytes) -> Frame:
    if len(data) < _FRAME_HEADER.size:
        raise RecordDecodeError("malformed", "frame envelope shorter than its header")
    _, version, meta_len = _FRAME_HEADER.unpack_from(data)
    if not Frame.reads(version):
        raise RecordDecodeError(
            "unsupported_version",
            f"frame record version {version}; this build reads {sorted(Frame.READS | {Frame.VERSION})}: "
            "upgrade framewatch on this consumer",
        )
    start = _FRAME_HEADER.size
    if meta_len > len(data) - start:
        raise RecordDecodeError("malformed", "frame envelope metadata length runs past the end")
    meta = _loads(data[start : start + meta_len])
    if meta.pop("type", None) != "frame" or meta.pop("v", None) != version:
        raise RecordDecodeError(
            "malformed", f"frame envelope metadata lacks type=frame, v={version}"
        )
    meta["jpeg"] = data[start + meta_len :]
    return _validate(Frame, meta)


def _decode_json(data: bytes) -> _Record:
    body = _loads(data)
    rtype, version = body.pop("type", None), body.pop("v", None)
    cls = JSON_RECORDS.get(rtype) if isinstance(rtype, str) else None
    if cls is None:
        raise RecordDecodeError("unknown_type", f"unknown record type {rtype!r}")
    if not cls.reads(version):
        raise RecordDecodeError(
            "unsupported_version",
            f"{rtype} record version {version!r}; this build reads {sorted(cls.READS | {cls.VERSION})}: "
            "upgrade framewatch on this consumer",
        )
    return _validate(cls, body)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON (NaN and infinities are refused)")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} overflows a float")
    return value


def _loads(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RecordDecodeError("malformed", f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise RecordDecodeError("malformed", "record is not a JSON object")
    return body


def _validate(cls: type[R], body: dict[str, Any]) -> R:
    try:
        return cls.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(record)"
        raise RecordDecodeError(
            "invalid", f"{cls.TYPE} record field {where}: {first['msg']}"
        ) from None
    except RecursionError:
        raise RecordDecodeError("malformed", f"{cls.TYPE} record nested too deeply") from None
