"""One typed settings object for every framewatch process.

Sources, strongest first: explicit overrides, environment variables (``FRAMEWATCH_*``; nested
sections use ``__``, e.g. ``FRAMEWATCH_SCORING__MAX_BATCH=16``), a YAML config file
(``--config`` or ``FRAMEWATCH_CONFIG``), then defaults. Each stage owns one section in its own
module here, so the core never imports a stage but still validates everything at start.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from framewatch.errors import SettingsError
from framewatch.records import MAX_RECORD_BYTES
from framewatch.settings.alerts import AlertsSettings
from framewatch.settings.console import ConsoleSettings
from framewatch.settings.deadletters import DeadLetterSettings
from framewatch.settings.dsa import DsaSettings
from framewatch.settings.evidence import EvidenceSettings
from framewatch.settings.ingest import IngestSettings
from framewatch.settings.scoring import ScoringSettings
from framewatch.settings.streams import StreamsSettings

ENV_PREFIX = "FRAMEWATCH_"
TOPIC_KEYS = (
    "frames",
    "scores",
    "decisions",
    "enforcement",
    "alerts",
    "reviews",
    "audit",
    "dead_letters",
    "decisions_shadow",
    "scores_shadow",
)

# the streams worker's Faust app: its id is also its consumer group and the stem of the topics
# Faust owns (re-keyed repartitions, table changelogs); every such name is built below
STREAMS_APP = "framewatch-streams"
INTERNAL_TOPICS = {
    "decisions_by_account": ("decisions-by-account", "account"),
    "reviews_by_account": ("reviews-by-account", "account"),
    "audit_in": ("audit-in", "stream"),
}
# the worker's tables -> what they are keyed by (their changelog has that topic's partitions)
TABLES = {
    "stream-state": "stream",
    "account-ledger": "account",
    "audit-head": "stream",
    "stream-state-shadow": "stream",
}


class TopicsSettings(BaseModel):
    """Topic names and partition counts.

    frames, scores and decisions are all keyed by stream_id and must be co-partitioned (same
    count) so a stream's frames, scores and state live on one worker.
    """

    prefix: str = Field("", description="prepended to every topic name (one cluster, many envs)")
    frames: str = "frames"
    scores: str = "scores"
    decisions: str = "decisions"
    enforcement: str = "enforcement"
    alerts: str = "alerts"
    reviews: str = "reviews"
    audit: str = "audit"
    dead_letters: str = "dead-letters"
    decisions_shadow: str = Field(
        "decisions-shadow",
        description="what streams.shadow_policy_dir would decide (acts on nothing)",
    )
    scores_shadow: str = Field(
        "scores-shadow",
        description="what the scoring.shadow_models set scores on live frames (read by "
        "`framewatch replay --scores-topic scores_shadow`; nothing acts on it)",
    )
    partitions: int = Field(6, ge=1, le=1024, description="partitions of the stream-keyed topics")
    account_partitions: int = Field(6, ge=1, le=1024, description="partitions of account topics")
    replication_factor: int = Field(1, ge=1, le=16)

    def name(self, key: str) -> str:
        if key not in TOPIC_KEYS:
            raise SettingsError(f"unknown topic {key!r}; known topics: {', '.join(TOPIC_KEYS)}")
        return self.prefix + getattr(self, key)

    def partitions_of(self, key: str) -> int:
        return self.account_partitions if key == "enforcement" else self.partitions

    def all(self) -> dict[str, tuple[str, int]]:
        """Every topic as key -> (full name, partitions)."""
        return {k: (self.name(k), self.partitions_of(k)) for k in TOPIC_KEYS}

    # -- internal topics: the one place their names are made ------------------------------

    def app_id(self) -> str:
        """The streams worker's Faust app id, which is also its consumer group."""
        return self.prefix + STREAMS_APP

    def internal(self, key: str) -> str:
        """An internal topic of the streams worker (a re-keyed copy of a public topic)."""
        if key not in INTERNAL_TOPICS:
            raise SettingsError(
                f"unknown internal topic {key!r}; known: {', '.join(INTERNAL_TOPICS)}"
            )
        return f"{self.app_id()}-{INTERNAL_TOPICS[key][0]}"

    def internal_all(self) -> dict[str, int]:
        """Every internal topic (full name -> partitions), created before Faust starts."""
        return {
            self.internal(k): self.account_partitions if keyed == "account" else self.partitions
            for k, (_, keyed) in INTERNAL_TOPICS.items()
        }

    def changelogs_all(self) -> dict[str, int]:
        """Every table's changelog topic (full name -> partitions), created before Faust starts
        so that no table sees its changelog missing from a metadata fetch that raced Faust's own
        creation (Faust then refuses the table's records: PartitionsMismatch)."""
        return {
            self.changelog(t): self.account_partitions if keyed == "account" else self.partitions
            for t, keyed in TABLES.items()
        }

    def changelog(self, table: str) -> str:
        """The changelog topic of one of the worker's tables (read back by inspect tools)."""
        if table not in TABLES:
            raise SettingsError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
        return f"{self.app_id()}-{table}-changelog"


class MetricsSettings(BaseModel):
    """Prometheus ports, one per process kind so they can share a host."""

    enabled: bool = True
    host: str = "127.0.0.1"
    ingest_port: int = Field(9101, ge=0, le=65535)
    scoring_port: int = Field(9102, ge=0, le=65535)
    streams_port: int = Field(9103, ge=0, le=65535)
    alerts_port: int = Field(9104, ge=0, le=65535)
    console_port: int = Field(9105, ge=0, le=65535)
    check_api_port: int = Field(9106, ge=0, le=65535, description="`framewatch check-api`")
    lag_interval_s: float = Field(
        5.0,
        gt=0,
        description="how often each consumer exports framewatch_consumer_lag (the partition "
        "end minus the group's committed offset; reading the committed offset is a broker call)",
    )
    max_stream_series: int = Field(
        1000,
        ge=1,
        description="streams with their own series (lag, last frame, state) per ingest process; "
        "past it the least recently used stream's series are dropped (stream ids are clients' "
        "names: their count has no other bound)",
    )
    port_dir: Path | None = Field(
        None,
        description="when set, every process binds /metrics on a port the kernel picks (the "
        "*_port settings are ignored) and writes it to <port_dir>/<stage>.port: for harnesses "
        "running many stacks on one host, where picking a free port to bind later is racy",
    )


class LocalSettings(BaseModel):
    """Where `framewatch local` keeps the jar cache and the throwaway broker/Redis state."""

    kafka_version: str = "4.4.0"
    cache_dir: Path = Field(
        default_factory=lambda: (
            Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "framewatch"
        )
    )
    state_dir: Path = Field(default_factory=lambda: Path(".framewatch") / "local")
    kafka_port: int = Field(9092, ge=1, le=65535)
    controller_port: int = Field(9093, ge=1, le=65535)
    redis_port: int = Field(6379, ge=1, le=65535)
    # one broker holds every test's topics in a full `make test` run: 512m ran out of heap
    kafka_heap: str = "1g"
    start_timeout_s: float = Field(90.0, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="comma-separated host:port list of the Kafka brokers"
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_client_id: str = "framewatch"
    kafka_max_record_bytes: int = Field(
        MAX_RECORD_BYTES,
        ge=1 << 20,
        le=MAX_RECORD_BYTES,
        description="largest record produced or fetched; at most the broker's and the topics' "
        "message.max.bytes (the local broker's server.properties sets 16 MiB, the format's cap)",
    )

    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        description="redis:// or rediss:// URL; may carry a password, so it prints masked",
    )
    redis_prefix: str = Field("fw:", description="prepended to every Redis key framewatch writes")
    redis_connect_timeout_s: float = Field(3.0, gt=0, description="Redis connection set-up")
    redis_health_check_s: float = Field(
        15.0, ge=0, description="ping an idle pooled Redis connection before reuse after this"
    )
    redis_hot_path_timeout_s: float = Field(
        2.0,
        gt=0,
        description="socket timeout of the Redis calls that must not stall frames (score "
        "cache, the streams hot mark): they give up and go on without Redis",
    )
    redis_pool_wait_s: float = Field(
        30.0, gt=0, description="how long a record waits for a free pooled connection (alerts)"
    )

    taxonomy_file: Path | None = Field(
        None, description="YAML file that extends or overrides the built-in taxonomy"
    )
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    topics: TopicsSettings = Field(default_factory=TopicsSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    local: LocalSettings = Field(default_factory=LocalSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    streams: StreamsSettings = Field(default_factory=StreamsSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    dead_letters: DeadLetterSettings = Field(default_factory=DeadLetterSettings)
    dsa: DsaSettings = Field(default_factory=DsaSettings)
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_hosts(cls, v: str) -> str:
        hosts = [h.strip() for h in v.split(",") if h.strip()]
        if not hosts or any(":" not in h or not h.rsplit(":", 1)[1].isdigit() for h in hosts):
            raise ValueError("expected host:port[,host:port...], e.g. 127.0.0.1:9092")
        return ",".join(hosts)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected a redis://, rediss:// or unix:// URL")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _CONFIG_FILE or os.environ.get(ENV_PREFIX + "CONFIG")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)


_CONFIG_FILE: str | None = None


def _jsonable(o: object) -> object:
    return o.model_dump(mode="json") if isinstance(o, BaseModel) else str(o)


def to_env(settings: Settings) -> dict[str, str]:
    """FRAMEWATCH_* variables that give a child process exactly these settings.

    Secrets are written in clear: this is for a child's environment, never for a log.
    """
    env: dict[str, str] = {}

    def put(name: str, value: object) -> None:
        if value is None:
            return
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, list | dict | BaseModel):  # nested models (fusion rules) as JSON
            value = json.dumps(value, default=_jsonable)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        env[ENV_PREFIX + name.upper()] = str(value)

    for field in Settings.model_fields:
        value = getattr(settings, field)
        if isinstance(value, BaseModel):
            for sub in type(value).model_fields:
                put(f"{field}__{sub}", getattr(value, sub))
        else:
            put(field, value)
    return env


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build and validate the settings, turning any problem into a SettingsError that names it."""
    global _CONFIG_FILE
    path = config_file or os.environ.get(ENV_PREFIX + "CONFIG")
    if path and not Path(path).is_file():
        raise SettingsError(
            f"config file {path} does not exist (from --config or {ENV_PREFIX}CONFIG); "
            "point it at a YAML file or unset it"
        )
    _check_env_names()
    _CONFIG_FILE = str(path) if path else None
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    except Exception as exc:  # e.g. YAML syntax errors from the file source
        raise SettingsError(f"could not read settings: {exc}") from None
    finally:
        _CONFIG_FILE = None


def _check_env_names() -> None:
    """A misspelt FRAMEWATCH_* variable would otherwise be ignored silently."""
    known = set(Settings.model_fields) | {"config", "testdata"}  # testdata: devkit.demo
    for name in os.environ:
        if name.startswith(ENV_PREFIX):
            field = name[len(ENV_PREFIX) :].split("__")[0].lower()
            if field not in known:
                raise SettingsError(
                    f"unknown setting {name}; known: "
                    + ", ".join(ENV_PREFIX + k.upper() for k in sorted(known))
                )


def _describe(exc: ValidationError) -> str:
    lines = ["invalid settings:"]
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        env = ENV_PREFIX + "__".join(p.upper() for p in loc)
        lines.append(f"  {'.'.join(loc)} (env {env}): {err['msg']}")
    return "\n".join(lines)


__all__ = ["ENV_PREFIX", "TOPIC_KEYS", "Settings", "TopicsSettings", "load_settings", "to_env"]
