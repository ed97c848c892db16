"""Hash lists in the formats the field exchanges: Meta's vPDQ files, python-threatexchange / HMA
signal files and dataset CSV, plain hex; read, banked in the real Redis, and written back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devkit.testdata import video, vpdq
from framewatch.cli import main
from framewatch.settings import Settings
from scoring import hashfiles
from scoring.errors import BankError

CHAIR = vpdq("chair-orig-22-sd-bar")
DOORKNOB = vpdq("doorknob-hd-no-bar")
H1, H2 = "ab" * 32, "0f" * 32


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FRAMEWATCH_REDIS_URL", settings.redis_url.get_secret_value())
    monkeypatch.setenv("FRAMEWATCH_REDIS_PREFIX", settings.redis_prefix)
    return main


def files(tmp_path: Path) -> dict[str, Path]:
    vp = json.dumps([f"{H1},100,0.000", f"{H2},80,1.000", f"{'cd' * 32},10,2.000"])
    te_csv = (
        "signal_type,signal_str,collab,category,tags\n"
        f"pdq,{H1},Sample Collab,POSITIVE_CLASS,csam\n"
        f"pdq,{H2},Sample Collab,NEGATIVE_CLASS,\n"
        f'vpdq,"{vp.replace(chr(34), chr(34) * 2)}",Sample Collab,POSITIVE_CLASS,\n'
        "video_md5,d41d8cd98f00b204e9800998ecf8427e,Sample Collab,POSITIVE_CLASS,\n"
    )
    out = {
        "hex": f"# banked by the trust team\n{H1}\n{H2.upper()}\n",
        "csv": f"id,hash,note\ncase-1,{H1},first\ncase-2,{H2},\n",
        "te": f"pdq {H1}\nvpdq {vp}\nvideo_md5 d41d8cd98f00b204e9800998ecf8427e\n",
        "te-csv": te_csv,
        "hma": f"{H1},1234567890,987,2021-05-01T00:00:00+0000,csam known_bad\n"
        f"{H2},1234567891,988,2021-05-02T00:00:00+0000,\n",
    }
    paths = {k: tmp_path / f"list-{k}.txt" for k in out}
    for k, p in paths.items():
        p.write_text(out[k])
    paths["vpdq"] = CHAIR
    return paths


def test_each_format_is_detected_and_read(tmp_path: Path) -> None:
    for fmt, path in files(tmp_path).items():
        parsed = hashfiles.read(path)
        assert parsed.format == fmt, path
    te = hashfiles.read(files(tmp_path)["te"])
    assert [e.kind for e in te.entries] == ["hash", "video"]
    assert te.entries[1].hexes == [H1, H2] and te.low_quality == 1  # quality 10 left out
    assert sum(te.skipped.values()) == 1  # the video_md5 signal, counted
    tc = hashfiles.read(files(tmp_path)["te-csv"])
    assert [e.hexes for e in tc.entries] == [[H1], [H1, H2]]  # the NEGATIVE_CLASS row is not banked
    assert "NEGATIVE_CLASS" in hashfiles.summary(tc) and "video_md5" in hashfiles.summary(tc)
    assert tc.entries[0].note == "collab=Sample Collab; category=POSITIVE_CLASS; tags=csam"
    hma = hashfiles.read(files(tmp_path)["hma"])
    assert [(e.entry_id, e.hexes, e.note) for e in hma.entries] == [
        ("1234567890", [H1], "labels=csam known_bad"),
        ("1234567891", [H2], ""),
    ]


def test_low_quality_vpdq_frames_are_skipped_with_a_count() -> None:
    lines = DOORKNOB.read_text().splitlines()
    low = sum(int(line.split(",")[1]) < 50 for line in lines)
    parsed = hashfiles.read(DOORKNOB)
    assert low > 0 and parsed.low_quality == low
    (entry,) = parsed.entries
    assert entry.entry_id == "doorknob-hd-no-bar" and len(entry.hexes) == len(lines) - low
    assert f"{low} vPDQ frame(s) under the quality floor" in hashfiles.summary(parsed)


def test_bad_lines_name_file_and_line_and_say_what_to_do(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text(f"0,100,{H1},0.000\n1,100,{'zz' * 32},0.033\n2,abc,{H1},0.067\n3,100,{H1}\n")
    with pytest.raises(BankError) as e:
        hashfiles.read(bad)
    msg = str(e.value)
    assert f"{bad}:2: " in msg and "is not a PDQ hash (64 hex characters)" in msg
    assert f"{bad}:3: quality must be an integer" in msg
    assert f"{bad}:4: a vPDQ line is frame_number,quality,pdq_hex,timestamp_s" in msg
    assert "nothing was added" in msg and "--format" in msg
    odd = tmp_path / "odd.txt"
    odd.write_text("!!\n")
    with pytest.raises(BankError, match=r"odd.txt:1: cannot tell the format .* pass --format"):
        hashfiles.read(odd)


@pytest.mark.integration
@pytest.mark.parametrize("fmt", list(hashfiles.FORMATS))
def test_round_trip_through_the_real_redis(cli, capsys, tmp_path: Path, fmt: str) -> None:  # type: ignore[no-untyped-def]
    src = files(tmp_path)[fmt]
    args = ["bank", "add", "rt", "--file", str(src), "--role", "review",
            "--category", "known_bad.csam_bank"]  # fmt: skip
    assert cli(args) == 0
    before = hashfiles.read(src)
    out = tmp_path / f"out.{fmt}"
    assert cli(["bank", "export", "rt", "--format", fmt, "--out", str(out)]) == 0
    after = hashfiles.read(out, fmt)
    assert sorted(h for e in after.entries for h in e.hexes) == sorted(
        h for e in before.entries for h in e.hexes
    )
    if fmt == "vpdq":  # frame numbers, qualities and times survive
        assert after.entries[0].frames == before.entries[0].frames
        kept = [ln for ln in src.read_text().splitlines() if int(ln.split(",")[1]) >= 50]
        assert out.read_text().splitlines() == kept
    if fmt in ("hex", "csv"):
        assert out.read_text().count("\n") >= 2
    # and what we wrote, another framewatch (or threatexchange) reads back into a bank
    assert cli(["bank", "add", "rt2", "--file", str(out), "--role", "review",
                "--category", "known_bad.csam_bank"]) == 0  # fmt: skip
    capsys.readouterr()
    assert cli(["bank", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["rt2"]["hashes"] == rows["rt"]["hashes"]


@pytest.mark.integration
def test_bundled_vpdq_reference_file_matches_frames_of_the_real_video(cli, capsys) -> None:  # type: ignore[no-untyped-def]
    assert cli(["bank", "add", "ref", "--file", str(CHAIR), "--role", "red_line",
                "--category", "known_bad.csam_bank"]) == 0  # fmt: skip
    assert "673 hash(es) in 1 entr(y/ies) (vpdq)" in capsys.readouterr().err
    assert cli(["bank", "match", "--video", str(video("chair-orig-22-sd-bar.mp4")), "--json"]) == 0
    (hit,) = json.loads(capsys.readouterr().out)
    assert hit["entry_id"] == "chair-orig-22-sd-bar" and hit["matched"]
    assert hit["frames_matched"] >= 0.9 * hit["frames_sampled"] and hit["best_distance"] <= 8
    assert cli(["bank", "match", "--video", str(video("pattern-hd-no-bar.mp4")), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.integration
def test_vpdq_export_of_a_bank_with_several_videos_asks_for_an_entry(cli, capsys) -> None:  # type: ignore[no-untyped-def]
    for f in (CHAIR, DOORKNOB):
        assert cli(["bank", "add", "two", "--file", str(f), "--role", "review",
                    "--category", "known_bad.csam_bank"]) == 0  # fmt: skip
    assert cli(["bank", "export", "two", "--format", "vpdq"]) == 1
    assert "pass --entry ID" in capsys.readouterr().err
    assert cli(["bank", "export", "two", "--format", "vpdq", "--entry", "doorknob-hd-no-bar"]) == 0
    assert capsys.readouterr().out.count("\n") == 60
