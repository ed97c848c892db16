"""`framewatch replay`: a new policy re-decides retained scores; the report counts the change.

The pure comparison on scripted records, and the command on the real broker's scores topic.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from framewatch import records, taxonomy
from framewatch.errors import FramewatchError
from framewatch.settings import Settings
from streams.cli_replay import parse_when
from streams.policy import PolicyError, load_dir
from streams.replay import candidate, compare
from tests.streams.helpers import scores
from tests.streams.worker import env_for, produce

TAX = taxonomy.load()
STRICTER = "scope: {}\nrules:\n  sexual: {review: 0.4, block: 0.85}\n"


def _traffic(t0: float = 1000.0) -> list[records.Scores]:
    out = [scores(i, "mild", t0=t0, cats={"sexual": 0.45}) for i in range(5)]
    out += [scores(i, "gore", t0=t0, cats={"violence.gore": 0.9}) for i in range(4)]
    out += [scores(i, "clean", t0=t0, cats={"sexual": 0.1}) for i in range(4)]
    return out


def test_a_lower_review_threshold_adds_reviews_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "strict.yaml").write_text(STRICTER)
    new = candidate(None, tmp_path / "strict.yaml", TAX)
    rep = compare(_traffic(), load_dir(None, TAX), new)
    rows = {r["category"]: r for r in rep.rows()}
    assert rows["sexual"]["reviews_now"] == 0 and rows["sexual"]["reviews_new"] == 1
    assert rows["violence.gore"]["blocks_change"] == 0 and rows["violence.gore"]["blocks_now"] == 1
    assert rep.changed_streams == ["default/mild"]
    assert (rep.records, rep.streams) == (13, 3)


def test_an_error_after_merging_names_the_new_file_not_a_scratch_copy(tmp_path: Path) -> None:
    running = tmp_path / "running"
    running.mkdir()
    (running / "default.yaml").write_text("scope: {}\nrules:\n  hate: {review: 0.7}\n")
    new = tmp_path / "acme.yaml"
    new.write_text("scope: {tenant: acme}\nrules:\n  hate: {block: 0.5}\n")
    with pytest.raises(PolicyError) as ei:
        candidate(running, new, TAX)
    assert ei.value.file == str(new) and "below review" in ei.value.reason


def test_from_accepts_iso_epoch_and_ages_and_says_what_is_wrong() -> None:
    now = 1_800_000_000.0
    assert parse_when("2h", now) == now - 7200
    assert parse_when("1700000000", now) == 1_700_000_000
    assert parse_when("2026-12-01T20:00:00+00:00", now) == 1_796_155_200
    assert parse_when(None, now) == 0.0
    with pytest.raises(FramewatchError, match="time zone"):
        parse_when("2026-12-01T20:00:00", now)
    with pytest.raises(FramewatchError, match="90m, 6h or 2d"):
        parse_when("yesterday", now)


@pytest.mark.integration
async def test_replay_command_reads_the_scores_topic(
    make_settings: Callable[..., Settings], kafka_topics: dict[str, str], tmp_path: Path
) -> None:
    settings = make_settings()
    old = _traffic(t0=1000.0)  # before --from: not replayed
    new = [sc.model_copy(update={"frame_id": sc.frame_id + "b", "stream_id": sc.stream_id + "2",
                                 "captured_at": sc.captured_at + 5000}) for sc in _traffic()]  # fmt: skip
    await produce(settings, [(s.stream_id, records.encode(s)) for s in old + new])
    (tmp_path / "strict.yaml").write_text(STRICTER)
    out = subprocess.run(
        [sys.executable, "-m", "framewatch.cli", "replay", "--policy",
         str(tmp_path / "strict.yaml"), "--from", "5000", "--json"],
        env=env_for(settings, tmp_path / "data"), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert (body["records"], body["streams"]) == (13, 3)
    rows = {r["category"]: r for r in body["categories"]}
    assert rows["sexual"]["reviews_change"] == 1
    assert body["changed_streams"] == ["default/mild2"]
    assert body["policy_now"] != body["policy_new"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  sexual: {review: 2}\n")
    out = subprocess.run(
        [sys.executable, "-m", "framewatch.cli", "replay", "--policy", str(bad)],
        env=env_for(settings, tmp_path / "data"), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode != 0 and f"{bad}:2:" in out.stderr
