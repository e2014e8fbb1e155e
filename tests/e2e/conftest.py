"""The fleet as separate processes on the real broker and Redis, in a namespace of its own."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocol

from devtools.fleet import SERVICES, Fleet
from devtools.namespaces import delete_namespace
from shared.contracts import Event
from shared.messaging import aiokafka_kwargs, ensure_topics
from shared.messaging.topic_io import Publisher, ReadRecord, TopicReader, end_offsets
from shared.settings import Settings
from tests.conftest import settings_for

# Personal data the privacy test plants, and what any personal data looks like in a log line.
PHONE = "13812345678"
PHONE_FORMATTED = "+86 139 1234 5678"
ID_CARD = "11010519491231002X"
ID_CARD_SPACED = "110105 19491231 002X"
EMAIL = "zhang.san@example.com"
NAME = "张三丰"
PATTERNS = (
    re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])"),
    re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])"),
    re.compile(r"(?<![0-9A-Za-z])1[3-9]\d(?:[ -]\d{4}){2}(?![0-9A-Za-z])"),  # 139 1234 5678, 139-1234-5678
    re.compile(r"(?<![0-9A-Za-z])\d{6}[ -]\d{8}[ -]\d{3}[\dXx](?![0-9A-Za-z])"),  # 110105 19491231 002X
    re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
)


def personal_data_in_logs(root: Path) -> list[str]:
    """Every log line under `root` that carries something that looks like personal data."""
    hits = []
    for path in sorted(root.rglob("*.log")):
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            if NAME in line or any(p.search(line) for p in PATTERNS):
                hits.append(f"{path.relative_to(root)}:{number}: {line[:200]}")
    return hits


@pytest.fixture(scope="session", autouse=True)
def _no_personal_data_in_any_log(log_root: Path) -> Iterator[None]:
    """When the session ends, every service log any test wrote is scanned: one line with personal data fails the run."""
    yield
    hits = personal_data_in_logs(log_root)
    assert not hits, "personal data in service logs:\n" + "\n".join(hits[:20])


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

    async def until_logged(self, name: str, *needles: str, timeout_s: float = 30) -> None:
        """Wait until the process `name` has logged a line holding every needle."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self.fleet.logged(name, *needles):
            assert asyncio.get_running_loop().time() < deadline, f"{name} never logged {needles}:\n{self.fleet.tail(name)}"
            await asyncio.sleep(0.05)

    async def joined(self, group: str, members: int, *, timeout_s: float = 60) -> None:
        """Wait until the consumer group `group` (the service's name for it) is stable with `members`
        members, each holding partitions: replicas that start together join one by one, and the first
        may drain a topic alone before the group rebalances."""
        group_id = self.settings.topics.group(group)
        admin = AIOKafkaAdminClient(**aiokafka_kwargs(self.settings))
        await admin.start()
        try:
            deadline = asyncio.get_running_loop().time() + timeout_s
            while True:
                (response,) = await admin.describe_consumer_groups([group_id])
                (described,) = response.to_object()["groups"]
                holding = [m for m in described["members"] if m["member_assignment"] and ConsumerProtocol.ASSIGNMENT.decode(m["member_assignment"]).assignment]
                if described["state"] == "Stable" and len(described["members"]) == members == len(holding):
                    return
                assert asyncio.get_running_loop().time() < deadline, f"{group_id} is {described['state']} with {len(holding)} of {members} members holding partitions"
                await asyncio.sleep(0.2)
        finally:
            await admin.close()

    async def consumed(self, service: str, topics: list[str], *, timeout_s: float = 60) -> None:
        """Wait until the service's consumer group has committed every record the topics hold now."""
        ends = await end_offsets(self.settings, topics)
        group = self.settings.topics.group(service)
        admin = AIOKafkaAdminClient(**aiokafka_kwargs(self.settings))
        await admin.start()
        try:
            deadline = asyncio.get_running_loop().time() + timeout_s
            while True:
                committed = await admin.list_consumer_group_offsets(group)
                if all(tp in committed and committed[tp].offset >= end for tp, end in ends.items() if end > 0):
                    return
                assert asyncio.get_running_loop().time() < deadline, f"{group} did not catch up with {topics}"
                await asyncio.sleep(0.1)
        finally:
            await admin.close()

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
