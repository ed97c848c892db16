"""Kafka SASL/TLS and Redis AUTH/TLS settings really reach the clients we build."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest

from framewatch import kafkaio, redisio
from framewatch.errors import FramewatchError
from framewatch.settings import load_settings


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=framewatch-test", "-keyout", str(d / "k.pem"), "-out", str(d / "c.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    return d / "c.pem", d / "k.pem"


async def test_sasl_ssl_reaches_kafka_clients(cert: tuple[Path, Path]) -> None:
    crt, key = cert
    s = load_settings(
        kafka_bootstrap="kafka-1:9093,kafka-2:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="framewatch",
        kafka_sasl_password="s3cr3t",
        kafka_ssl_cafile=crt,
        kafka_ssl_certfile=crt,
        kafka_ssl_keyfile=key,
    )
    cfg = kafkaio.client_config(s)
    assert cfg["security_protocol"] == "SASL_SSL"
    assert cfg["sasl_mechanism"] == "SCRAM-SHA-512"
    assert cfg["sasl_plain_username"] == "framewatch" and cfg["sasl_plain_password"] == "s3cr3t"
    assert isinstance(cfg["ssl_context"], ssl.SSLContext)
    assert cfg["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    p = kafkaio.producer(s)
    assert p.client._security_protocol == "SASL_SSL"
    assert p.client._sasl_mechanism == "SCRAM-SHA-512"
    faust_cfg = kafkaio.faust_broker_config(s)
    assert faust_cfg["broker"] == "kafka://kafka-1:9093;kafka://kafka-2:9093"
    assert faust_cfg["broker_credentials"].username == "framewatch"
    assert "s3cr3t" not in repr(s)


def test_sasl_without_username_is_refused() -> None:
    s = load_settings(kafka_security_protocol="SASL_PLAINTEXT")
    with pytest.raises(FramewatchError, match="FRAMEWATCH_KAFKA_SASL_MECHANISM"):
        kafkaio.client_config(s)


def test_redis_auth_and_tls_reach_the_client() -> None:
    s = load_settings(redis_url="rediss://:pa55@redis.internal:6380/2")
    kw = redisio.sync_client(s).connection_pool.connection_kwargs
    assert kw["password"] == "pa55" and kw["host"] == "redis.internal" and kw["port"] == 6380
    assert redisio.sync_client(s).connection_pool.connection_class.__name__ == "SSLConnection"
    assert "pa55" not in repr(s)
