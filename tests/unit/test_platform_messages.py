"""The local platform says clearly what is missing or in the way."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from devtools.platform import LocalPlatform, PlatformError
from shared.settings import Settings


def test_a_missing_java_is_named_with_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr("devtools.platform.Path", lambda *a: tmp_path / "no-jvm")  # no /usr/lib/jvm either
    with pytest.raises(PlatformError, match="Java 17 not found"):
        LocalPlatform(Settings(home=tmp_path)).java()


def test_a_missing_maven_is_named_when_the_jars_are_not_cached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PlatformError, match="Maven not found"):
        LocalPlatform(Settings(home=tmp_path)).kafka_libs()


def test_a_taken_port_is_reported_with_the_ways_out(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        platform = LocalPlatform(Settings(home=tmp_path, kafka_port=port, kafka_controller_port=port + 1), say=lambda _: None)
        with pytest.raises(PlatformError, match=f"port {port} on 127.0.0.1 is taken.*CW_KAFKA_PORT.*KAFKA_BOOTSTRAP_SERVERS"):
            platform.start_kafka()
        redis_platform = LocalPlatform(Settings(home=tmp_path, redis_port=port), say=lambda _: None)
        with pytest.raises(PlatformError, match=f"port {port} on 127.0.0.1 is taken.*CW_REDIS_PORT"):
            redis_platform.start_redis()


def test_external_endpoints_are_used_and_nothing_is_started(tmp_path: Path) -> None:
    platform = LocalPlatform(Settings(home=tmp_path, kafka_bootstrap_servers="127.0.0.1:1", redis_url="redis://127.0.0.1:1/0"))
    assert platform.kafka_external and platform.redis_external
    with pytest.raises(PlatformError, match="KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1 does not answer"):
        platform.start_kafka()
    assert not (tmp_path / "kafka").exists()
