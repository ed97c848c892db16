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
from streams.replay import candidate, compare, pair
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


def _shadowed(t0: float = 1000.0) -> tuple[list[records.Scores], list[records.Scores]]:
    """Live traffic and a shadow model set's scores of it: the shadow calls 'racy' sexual
    (a block where live sees nothing), agrees on 'gore', and missed one frame of 'clean'."""
    live = [scores(i, "racy", t0=t0, cats={"sexual": 0.2}) for i in range(5)]
    live += [scores(i, "gore", t0=t0, cats={"violence.gore": 0.9}) for i in range(4)]
    live += [scores(i, "clean", t0=t0, cats={"sexual": 0.1}) for i in range(4)]
    shadow = [scores(i, "racy", t0=t0, cats={"sexual": 0.95}) for i in range(5)]
    shadow += [scores(i, "gore", t0=t0, cats={"violence.gore": 0.92}) for i in range(4)]
    shadow += [scores(i, "clean", t0=t0, cats={"sexual": 0.05}) for i in range(1, 4)]
    return live, shadow


def test_a_shadow_model_set_is_compared_on_the_frames_both_sides_scored() -> None:
    live, shadow = _shadowed()
    p = pair(live, shadow)
    assert (p.only_now, p.only_new, len(p.now), len(p.new)) == (1, 0, 12, 12)
    policy = load_dir(None, TAX)
    rep = compare(p.now, policy, policy, p.new)
    rows = {r["category"]: r for r in rep.rows()}
    assert (rows["sexual"]["blocks_now"], rows["sexual"]["blocks_new"]) == (0, 1)
    assert rows["violence.gore"]["blocks_change"] == 0
    assert rep.changed_streams == ["default/racy"]
    assert (rep.records, rep.streams) == (12, 3)


@pytest.mark.integration
async def test_replay_of_the_shadow_scores_topic_says_what_the_model_set_would_change(
    make_settings: Callable[..., Settings], kafka_topics: dict[str, str], tmp_path: Path
) -> None:
    from framewatch import kafkaio

    settings = make_settings()
    live, shadow = _shadowed()
    prod = kafkaio.producer(settings)
    await prod.start()
    try:
        for key, recs in (("scores", live), ("scores_shadow", shadow)):
            for sc in recs:
                await prod.send_and_wait(settings.topics.name(key), records.encode(sc),
                                         key=sc.stream_id.encode())  # fmt: skip
    finally:
        await prod.stop()
    (tmp_path / "strict.yaml").write_text(STRICTER)
    env = env_for(settings, tmp_path / "data")

    def replay(*extra: str) -> dict:  # type: ignore[type-arg]
        out = subprocess.run(
            [sys.executable, "-m", "framewatch.cli", "replay", "--scores-topic", "scores-shadow",
             *extra, "--json"], env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    body = replay()  # the running policy on both sides: only the models differ
    assert body["policy_now"] == body["policy_new"] and body["scores_topic"] == "scores_shadow"
    assert (body["records"], body["live_only"], body["shadow_only"]) == (12, 1, 0)
    rows = {r["category"]: r for r in body["categories"]}
    assert (rows["sexual"]["blocks_now"], rows["sexual"]["blocks_change"]) == (0, 1)
    assert rows["violence.gore"]["blocks_change"] == 0
    assert body["changed_streams"] == ["default/racy"]
    # the shadow model set under a new policy too: 'clean' stays clean, 'racy' still blocks
    body = replay("--policy", str(tmp_path / "strict.yaml"))
    assert body["policy_now"] != body["policy_new"]
    assert {r["category"]: r for r in body["categories"]}["sexual"]["blocks_change"] == 1

    # without a shadow topic, a policy is needed: the error says what to give
    out = subprocess.run([sys.executable, "-m", "framewatch.cli", "replay"], env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode != 0 and "--scores-topic scores_shadow" in out.stderr
