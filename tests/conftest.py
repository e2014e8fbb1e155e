"""Test endpoints: KAFKA_BOOTSTRAP_SERVERS / REDIS_URL when set; else testcontainers when a Docker
engine answers; else the local platform (real Kafka from the official jars, Debian's redis-server).

Only end-to-end tests ask for them: unit and handler tests never start anything.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.settings import REPO_ROOT, Settings


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@pytest.fixture(scope="session")
def endpoints() -> Iterator[dict[str, str]]:
    """Kafka and Redis endpoints for the whole test session."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("REDIS_URL"):
        yield {"KAFKA_BOOTSTRAP_SERVERS": os.environ["KAFKA_BOOTSTRAP_SERVERS"], "REDIS_URL": os.environ["REDIS_URL"]}
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.redis import RedisContainer

        with KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka, RedisContainer("redis:7") as redis:
            host, port = redis.get_container_host_ip(), redis.get_exposed_port(6379)
            found = {"KAFKA_BOOTSTRAP_SERVERS": kafka.get_bootstrap_server(), "REDIS_URL": f"redis://{host}:{port}/0"}
            os.environ.update(found)  # the CLI and the fault suite read their endpoints from the environment
            try:
                yield found
            finally:
                for name in found:
                    os.environ.pop(name, None)
        return
    from devtools.platform import LocalPlatform

    settings = Settings()
    platform = LocalPlatform(settings, say=lambda line: print(f"[platform] {line}"))
    was_running = all(c.running for c in platform.status())
    platform.up()
    yield {"KAFKA_BOOTSTRAP_SERVERS": settings.kafka_servers, "REDIS_URL": settings.redis_dsn}
    if not was_running and not os.environ.get("CW_KEEP_PLATFORM"):
        platform.down()


@pytest.fixture
def namespace() -> str:
    """A fresh topic and Redis namespace: each test sees only its own events and state."""
    return f"t{time.strftime('%H%M%S')}x{uuid.uuid4().hex[:6]}"


def settings_for(endpoints: dict[str, str], namespace: str, **overrides: object) -> Settings:
    return Settings(
        kafka_bootstrap_servers=endpoints["KAFKA_BOOTSTRAP_SERVERS"],
        redis_url=endpoints["REDIS_URL"],
        topic_namespace=namespace,
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
def log_root() -> Path:
    root = REPO_ROOT / ".cache" / "test-logs" / time.strftime("%Y%m%d-%H%M%S")
    root.mkdir(parents=True, exist_ok=True)
    return root


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests by their folder: tests/unit -> unit, tests/handlers -> handlers, tests/e2e -> e2e."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for kind in ("unit", "handlers", "e2e"):
            if kind in parts:
                item.add_marker(getattr(pytest.mark, kind))
