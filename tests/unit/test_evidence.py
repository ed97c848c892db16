"""The evidence store on local files: staging, pinning, custody digests, access, retention."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from framewatch.evidence import EvidenceError, EvidenceStore, seg
from framewatch.records import Decision, HashMatch, Reason, Scores
from framewatch.settings.evidence import EvidenceSettings


def store(tmp_path: Path, **kw: object) -> EvidenceStore:
    return EvidenceStore(EvidenceSettings(dir=tmp_path / "ev", **kw))


def sc(i: int, tenant: str = "t1", stream: str = "s1", score: float = 0.7, **kw: object) -> Scores:
    return Scores(frame_id=f"f{i}", stream_id=stream, account_id="a1", tenant=tenant, seq=i,
                  captured_at=1000.0 + i, scored_at=1000.5 + i,
                  scores={"violence.gore": score}, **kw)  # fmt: skip


def decision(i: int, tenant: str = "t1", red: bool = False, action: str = "review") -> Decision:
    return Decision(
        decision_id=f"d{i}",
        stream_id="s1",
        account_id="a1",
        tenant=tenant,
        action=action,  # type: ignore[arg-type]
        previous_state="ok",
        reasons=[
            Reason(
                category="violence.gore",
                score=0.7,
                threshold=0.5,
                frames_seen=3,
                frames_window=5,
                rule="default.yaml:violence.gore",
            )
        ],
        red_line=red,
        policy_version="pv1",
        evidence_frame_ids=[f"f{i}"],
        first_frame_id=f"f{i}",
        captured_at=1000.0 + i,
        decided_at=2000.0,
    )


def test_pin_keeps_cited_and_frames_before_only(tmp_path: Path) -> None:
    st = store(tmp_path, frames_before=3)
    for i in range(10):
        st.stage(sc(i), f"jpeg-{i}".encode())
    pin = st.pin(decision(6), {"review": 0.5, "block": 0.85})
    assert [f["frame_id"] for f in pin["frames"]] == ["f3", "f4", "f5", "f6"]
    m = st.manifest("t1", "d6", actor="rev1")
    assert m is not None and m["thresholds"] == {"review": 0.5, "block": 0.85}
    assert [f["cited"] for f in m["frames"]] == [False, False, False, True]
    assert m["policy_version"] == "pv1" and m["rule"] == "default.yaml:violence.gore"


def test_manifest_digest_is_reproducible_custody(tmp_path: Path) -> None:
    st = store(tmp_path)
    st.stage(sc(1), b"jpeg-1")
    pin = st.pin(decision(1))
    body = (tmp_path / "ev" / "objects" / pin["manifest"][:2] / pin["manifest"]).read_bytes()
    assert hashlib.sha256(body).hexdigest() == pin["manifest"]
    assert st.pin(decision(1)) == pin  # a replay writes the same manifest
    frame = st.frame("t1", "d1", pin["frames"][0]["sha256"], actor="rev1")
    assert frame == b"jpeg-1"
    # an altered object is refused, not shown
    obj = tmp_path / "ev" / "objects" / pin["manifest"][:2] / pin["manifest"]
    obj.write_bytes(body.replace(b"pv1", b"pv2"))
    with pytest.raises(EvidenceError, match="altered"):
        st.manifest("t1", "d1", actor="rev1")


def test_other_tenant_sees_nothing_and_reads_are_logged(tmp_path: Path) -> None:
    st = store(tmp_path)
    st.stage(sc(1), b"jpeg-1")
    pin = st.pin(decision(1))
    assert st.manifest("t2", "d1", actor="evil") is None
    with pytest.raises(EvidenceError):
        st.frame("t2", "d1", pin["frames"][0]["sha256"], actor="evil")
    st.manifest("t1", "d1", actor="rev1")
    st.frame("t1", "d1", pin["frames"][0]["sha256"], actor="rev1")
    log = st.access_log("t1")
    assert [(e["actor"], e["what"]) for e in log] == [("rev1", "manifest"), ("rev1", "frame")]
    assert st.access_log("t2") == []


def test_staging_floor_hash_matches_and_text(tmp_path: Path) -> None:
    st = store(tmp_path, floor=0.5)
    assert not st.should_stage(sc(1, score=0.1))
    assert st.should_stage(sc(1, score=0.6))
    m = HashMatch(bank="b", entry_id="e", distance=3, threshold=31, role="red_line",
                  category="known_bad.csam_bank")  # fmt: skip
    assert st.should_stage(sc(1, score=0.0, hash_matches=[m]))


def test_retention_most_specific_wins(tmp_path: Path) -> None:
    st = store(tmp_path, retention_days=90,
               retention={"violence": 30, "t1:violence.gore": 7, "t2:*": 365})  # fmt: skip
    assert st.retention("t1", "violence.gore") == 7
    assert st.retention("t3", "violence.gore") == 30
    assert st.retention("t2", "sexual.explicit") == 365
    assert st.retention("t3", "sexual") == 90


def test_sweep_keeps_legal_hold_and_drops_expired(tmp_path: Path) -> None:
    st = store(tmp_path, retention_days=1, staging_ttl_s=60)
    st.stage(sc(1), b"jpeg-1")
    st.stage(sc(2), b"jpeg-2")
    st.pin(decision(1, action="block", red=True))
    pin2 = st.pin(decision(2))
    # a year later: the red line is held, the other pin and its unreferenced objects are gone
    out = st.sweep(now=time.time() + 365 * 86400)
    assert out["pins"] == 1 and out["staging"] == 2
    assert st.manifest("t1", "d1", actor="x") is not None
    assert st.manifest("t1", "d2", actor="x") is None
    assert not (tmp_path / "ev" / "objects" / pin2["manifest"][:2] / pin2["manifest"]).exists()


def test_forget_removes_the_accounts_pins(tmp_path: Path) -> None:
    st = store(tmp_path)
    st.stage(sc(1), b"jpeg-1")
    st.pin(decision(1, red=True))
    assert st.forget("t1", "a1") == 1
    assert st.manifest("t1", "d1", actor="x") is None


def test_hostile_ids_stay_inside_the_store(tmp_path: Path) -> None:
    assert seg("../../etc").startswith("h-")
    st = store(tmp_path)
    st.stage(sc(1, tenant="../x", stream="../../y"), b"j")
    files = [p for p in (tmp_path / "ev").rglob("*") if p.is_file()]
    assert files and all((tmp_path / "ev") in p.parents for p in files)


def test_forget_and_show_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from framewatch.cli import main

    monkeypatch.setenv("FRAMEWATCH_EVIDENCE__DIR", str(tmp_path / "ev"))
    st = store(tmp_path)
    st.stage(sc(1), b"jpeg-1")
    st.pin(decision(1, red=True))
    assert main(["evidence", "show", "t1", "d1", "--actor", "auditor"]) == 0
    assert '"decision_id": "d1"' in capsys.readouterr().out
    assert main(["evidence", "forget", "t1", "a1", "--json"]) == 0
    assert '"pins_removed": 1' in capsys.readouterr().out
    assert main(["evidence", "show", "t1", "d1"]) == 1
    assert "no evidence pinned" in capsys.readouterr().err
    assert [e["actor"] for e in st.access_log("t1")] == ["auditor"]


def test_an_escalated_decisions_evidence_goes_under_legal_hold(tmp_path: Path) -> None:
    st = store(tmp_path)
    st.stage(sc(1), b"jpeg-1")
    pin = st.pin(decision(1))  # a review decision: ordinary retention
    assert not pin["hold"] and pin["expires_at"] is not None
    held = st.hold("t1", "d1")
    assert held is not None and held["hold"] and held["expires_at"] is None
    assert held["manifest"] == pin["manifest"]  # the same evidence, now kept
    st.sweep(now=1000.0 + 10 * 365 * 86400)  # ten years on: a held pin is never swept
    assert st.manifest("t1", "d1", actor="x") is not None
    assert st.hold("t2", "d1") is None and st.hold("t1", "nope") is None  # tenant-walled
