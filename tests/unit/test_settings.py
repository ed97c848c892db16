from __future__ import annotations

from pathlib import Path

import pytest

from framewatch.errors import SettingsError
from framewatch.settings import load_settings


def test_defaults_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "fw.yaml"
    cfg.write_text("kafka_bootstrap: 10.0.0.1:9092\ntopics:\n  prefix: prod.\n  partitions: 12\n")
    monkeypatch.setenv("FRAMEWATCH_TOPICS__PARTITIONS", "24")
    s = load_settings(cfg)
    assert s.kafka_bootstrap == "10.0.0.1:9092"  # from the file
    assert s.topics.partitions == 24  # env beats file
    assert s.topics.name("frames") == "prod.frames"


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("FRAMEWATCH_KAFKA_BOOTSTRAP", "localhost", "FRAMEWATCH_KAFKA_BOOTSTRAP"),
        ("FRAMEWATCH_REDIS_URL", "http://x", "FRAMEWATCH_REDIS_URL"),
        ("FRAMEWATCH_TOPICS__PARTITIONS", "zero", "FRAMEWATCH_TOPICS__PARTITIONS"),
        ("FRAMEWATCH_SCORING__MAX_BATCH", "-1", "FRAMEWATCH_SCORING__MAX_BATCH"),
        ("FRAMEWATCH_KAFKA_BOOTSTARP", "x:1", "unknown setting FRAMEWATCH_KAFKA_BOOTSTARP"),
    ],
)
def test_invalid_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, named: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError, match=named):
        load_settings()


def test_missing_config_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_secrets_are_masked() -> None:
    s = load_settings(redis_url="redis://:hunter2@127.0.0.1:6379/0", kafka_sasl_password="pw123")
    assert "hunter2" not in repr(s) and "pw123" not in repr(s)


def test_to_env_round_trips_every_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from framewatch.settings import to_env

    s = load_settings(
        kafka_bootstrap="k1:9092,k2:9092",
        redis_url="redis://:pw@r:6379/1",
        topics={"prefix": "x.", "partitions": 7},
        scoring={"max_batch": 3, "models": ["opennsfw"]},
        alerts={"routing_file": tmp_path / "r.yaml"},
    )
    for k, v in to_env(s).items():
        monkeypatch.setenv(k, v)
    assert load_settings() == s


def test_internal_topic_names_all_carry_the_prefix_and_come_from_one_place() -> None:
    t = load_settings(topics={"prefix": "env1.", "partitions": 4, "account_partitions": 2}).topics
    assert t.app_id() == "env1.framewatch-streams"
    assert t.internal("audit_in") == "env1.framewatch-streams-audit-in"
    assert t.changelog("account-ledger") == "env1.framewatch-streams-account-ledger-changelog"
    assert t.internal_all() == {
        "env1.framewatch-streams-decisions-by-account": 2,
        "env1.framewatch-streams-reviews-by-account": 2,
        "env1.framewatch-streams-audit-in": 4,
    }
    with pytest.raises(SettingsError, match="known: stream-state"):
        t.changelog("ledger")


def test_the_record_cap_matches_the_local_brokers_message_max_bytes() -> None:
    """A record the producer may send must be one the broker accepts, and no larger."""
    from importlib import resources

    props = resources.files("framewatch").joinpath("data/local/server.properties").read_text()
    broker = int(next(ln.split("=", 1)[1] for ln in props.splitlines()
                      if ln.startswith("message.max.bytes=")))  # fmt: skip
    assert load_settings().kafka_max_record_bytes == broker
    with pytest.raises(SettingsError, match="kafka_max_record_bytes"):
        load_settings(kafka_max_record_bytes=broker + 1)


def test_the_frame_budget_defaults_on_and_null_in_the_environment_turns_it_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().scoring.frame_budget_ms == 250
    monkeypatch.setenv("FRAMEWATCH_SCORING__FRAME_BUDGET_MS", "null")
    assert load_settings().scoring.frame_budget_ms is None
    monkeypatch.setenv("FRAMEWATCH_SCORING__FRAME_BUDGET_MS", "80")
    assert load_settings().scoring.frame_budget_ms == 80
