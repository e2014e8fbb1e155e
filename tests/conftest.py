"""Test endpoints: KAFKA_BOOTSTRAP_SERVERS / REDIS_URL when set; else testcontainers when a Docker
engine answers and Kafka and Redis images are here or can be pulled (tests/containers.py); else
the local platform (real Kafka from the official jars, Debian's redis-server).

CW_TEST_ENDPOINTS forces one way: `env`, `containers` (`make test-containers`) or `platform`.
Only end-to-end tests ask for them: unit and handler tests never start anything.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import pytest

from shared.clock import ManualClock
from shared.settings import REPO_ROOT, Settings
from tests.clocks import NOW, clock_at

WAYS = ("auto", "env", "containers", "platform")

# The suite runs in the `test` environment, and so does every process it starts (a service refuses
# to start without CW_ENVIRONMENT).
os.environ["CW_ENVIRONMENT"] = "test"


def _containers_usable() -> bool:
    """Docker answers and Kafka and Redis images are here or can be pulled; else say why not."""
    from tests import containers

    if not containers.docker_answers():
        return False
    try:
        containers.choose_images()
    except containers.ContainersUnavailable as exc:
        print(f"[endpoints] a Docker engine answers but {exc}; using the local platform")
        return False
    return True


@pytest.fixture(scope="session")
def endpoints() -> Iterator[dict[str, str]]:
    """Kafka and Redis endpoints for the whole test session."""
    way = os.environ.get("CW_TEST_ENDPOINTS", "auto")
    if way not in WAYS:
        raise pytest.UsageError(f"CW_TEST_ENDPOINTS={way!r}: choose one of {', '.join(WAYS)}")
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("REDIS_URL")
    if way == "env" or (way == "auto" and given):
        if not given:
            raise pytest.UsageError("CW_TEST_ENDPOINTS=env needs KAFKA_BOOTSTRAP_SERVERS and REDIS_URL")
        yield {"KAFKA_BOOTSTRAP_SERVERS": os.environ["KAFKA_BOOTSTRAP_SERVERS"], "REDIS_URL": os.environ["REDIS_URL"]}
        return
    if way == "containers" or (way == "auto" and _containers_usable()):
        from tests import containers

        with ExitStack() as stack:
            try:
                found = stack.enter_context(containers.kafka_and_redis(say=print))
            except containers.ContainersUnavailable as exc:
                pytest.exit(f"end-to-end tests on containers: {exc}", returncode=3)
            saved = {name: os.environ.get(name) for name in found}
            os.environ.update(found)  # the CLI and the fault suite read their endpoints from the environment
            try:
                yield found
            finally:
                for name, value in saved.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value
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
def now() -> datetime:
    """The instant a test starts from (tests/clocks.py: `CW_TEST_NOW`, else 2026-11-28 12:00 UTC)."""
    return NOW


@pytest.fixture
def clock(now: datetime) -> ManualClock:
    """The test's own clock, standing at `now` until the test moves it; give it to what the test builds."""
    return clock_at(now)


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
    """Mark tests by their folder: tests/unit -> unit, tests/handlers -> handlers, tests/e2e -> e2e, tests/compose -> compose,
    tests/cluster -> cluster."""
    tests = Path(__file__).resolve().parent
    for item in items:
        path = Path(str(item.fspath)).resolve()
        parts = path.relative_to(tests).parts if path.is_relative_to(tests) else path.parts
        for kind in ("unit", "handlers", "e2e", "compose", "cluster"):
            if kind in parts:
                item.add_marker(getattr(pytest.mark, kind))
