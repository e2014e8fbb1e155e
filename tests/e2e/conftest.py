"""The fleet as separate processes on the real broker and Redis, in a namespace of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from creditwindow.fleet import SERVICES, Fleet
from creditwindow.topics_io import Publisher, ReadRecord, TopicReader
from shared.contracts import Event
from shared.messaging import delete_namespace, ensure_topics
from shared.settings import Settings
from tests.conftest import settings_for


@dataclass(slots=True)
class RunningFleet:
    settings: Settings
    fleet: Fleet

    async def publish(self, topic: str, events: Iterable[Event]) -> None:
        async with Publisher(self.settings) as publisher:
            futures = [await publisher.send(topic, event) for event in events]
            await asyncio.gather(*futures)

    async def publish_raw(self, topic: str, value: bytes, *, key: bytes | None, headers: Iterable[tuple[str, bytes]] = ()) -> None:
        async with Publisher(self.settings) as publisher:
            await (await publisher.send_raw(topic, value, key=key, headers=headers))

    async def read(
        self, topics: list[str], done: Callable[[list[ReadRecord]], bool], *, timeout_s: float = 90, settle_s: float = 0.0
    ) -> list[ReadRecord]:
        """Read the topics from the start until `done`, then (with settle_s) until quiet."""
        async with TopicReader(self.settings, topics) as reader:
            seen = await reader.until(done, timeout_s=timeout_s, settle_s=settle_s)
        dead = [p.name for p in self.fleet.exited()]
        assert not dead, f"service processes exited: {dead}\n" + "\n".join(self.fleet.tail(n) for n in dead)
        return seen

    async def drain(self, topics: list[str], *, idle_s: float = 2.0) -> list[ReadRecord]:
        async with TopicReader(self.settings, topics) as reader:
            return await reader.drain(idle_s=idle_s, timeout_s=60)


async def start_fleet(
    endpoints: dict[str, str], namespace: str, log_dir: Path, *, services: tuple[str, ...] = SERVICES, replicas: int = 1,
    env: dict[str, str] | None = None, extra_env: dict[str, dict[str, str]] | None = None,
) -> RunningFleet:  # fmt: skip
    settings = settings_for(endpoints, namespace)
    await ensure_topics(settings)
    fleet = Fleet(
        env={**endpoints, "CW_TOPIC_NAMESPACE": namespace, **(env or {})},
        log_dir=log_dir / namespace,
        services=services,
        replicas=replicas,
        extra_env=extra_env or {},
    )
    fleet.start()
    await asyncio.to_thread(fleet.wait_ready)
    return RunningFleet(settings, fleet)


@pytest.fixture
async def fleet(endpoints: dict[str, str], namespace: str, log_root: Path) -> AsyncIterator[RunningFleet]:
    running = await start_fleet(endpoints, namespace, log_root)
    try:
        yield running
    finally:
        running.fleet.stop()


@pytest.fixture(autouse=True)
async def _clean_namespace(endpoints: dict[str, str], namespace: str) -> AsyncIterator[None]:
    """Every e2e test's topics and Redis keys go when it ends, so the broker does not fill up."""
    yield
    await delete_namespace(settings_for(endpoints, namespace))
