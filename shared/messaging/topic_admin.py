"""The fleet's topics on the broker: created by the project (never by auto-creation), checked, looked up.

A topic that exists is not trusted to be right: `check_topics` compares each one with what the
settings ask for (partitions, replication factor, retention, cleanup policy, `min.insync.replicas`,
unclean leader election) and says what differs; `ensure_topics` logs those differences at every
start, and `creditwindow topics check` shows them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from shared.contracts import Topics
from shared.messaging.connection import aiokafka_kwargs
from shared.settings import Settings

__all__ = ["TopicDifference", "TopicSpec", "check_topics", "ensure_topics", "fleet_topics", "topic_partitions"]

log = structlog.get_logger("creditwindow.messaging")


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic as the settings want it."""

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TopicDifference:
    """One way an existing topic is not what the settings ask for."""

    topic: str
    what: str  # partitions | replication_factor | a topic config's name | missing
    found: str
    wanted: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.what} is {self.found}, the settings want {self.wanted}"


def fleet_topics(settings: Settings) -> list[TopicSpec]:
    """Every topic of the fleet as the settings want it."""
    topics: Topics = settings.topics
    # The decision log, the balances' log and the policy history; and, kept as long as the decisions
    # they explain, the scores they were made on, what each customer was told, and the reviews and suspensions.
    keep_forever = {topics.windows, topics.policy, topics.drawdowns, topics.scores, topics.notifications, topics.reviews}
    return [
        TopicSpec(
            name,
            partitions=1 if name == topics.policy else settings.topic_partitions,
            replication_factor=settings.topic_replication_factor,
            configs={
                "retention.ms": "-1" if name in keep_forever else str(settings.topic_retention_ms),
                "cleanup.policy": "delete",
                "min.insync.replicas": str(settings.min_insync_replicas),
                "unclean.leader.election.enable": "false",  # a leader out of sync would drop acknowledged records
            },
        )
        for name in topics.all()
    ]


def _admin(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**aiokafka_kwargs(settings), request_timeout_ms=15_000)


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the fleet's topics if missing (never by broker auto-creation), and log how existing ones
    differ from the settings. Returns those created."""
    wanted = fleet_topics(settings)
    admin = _admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            try:
                await admin.create_topics([NewTopic(t.name, t.partitions, t.replication_factor, topic_configs=t.configs) for t in missing])
            except TopicAlreadyExistsError:
                pass  # another process created them first
        # Created is not ready: on a cluster each broker learns of a new topic, and its partitions of
        # their leaders, a moment later. Wait until the answer shows every topic with a leader for each
        # partition, so a service (or a check) that starts next finds them whole.
        await _described(admin, [t.name for t in wanted], settle_s=15.0)
        present = [t for t in wanted if t.name in existing]
        for difference in await _differences(admin, present) if present else []:
            log.warning(
                "topic_differs", topic=difference.topic, what=difference.what, found=difference.found, wanted=difference.wanted
            )
        return [t.name for t in missing]
    finally:
        await admin.close()


async def check_topics(settings: Settings) -> list[TopicDifference]:
    """How the fleet's topics on the broker differ from what the settings ask for (missing ones too)."""
    admin = _admin(settings)
    await admin.start()
    try:
        return await _differences(admin, fleet_topics(settings))
    finally:
        await admin.close()


def _ready(topic: dict | None) -> bool:
    return bool(topic and not topic.get("error_code") and topic.get("partitions")) and all(
        p.get("leader", -1) >= 0 for p in topic["partitions"]
    )


async def _described(admin: AIOKafkaAdminClient, names: Sequence[str], *, settle_s: float) -> dict[str, dict]:
    """The topics as the broker describes them, asked again for up to `settle_s` while any of them is
    not yet whole (unknown to the broker answering, or a partition without a leader): right after a
    topic is made, a broker of a cluster may not know it yet. A topic still not whole is returned as
    last seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settle_s
    while True:
        described = {d["topic"]: d for d in await admin.describe_topics(list(names))}
        if all(_ready(described.get(name)) for name in names) or loop.time() >= deadline:
            return described
        await asyncio.sleep(0.2)


async def _differences(admin: AIOKafkaAdminClient, specs: Sequence[TopicSpec]) -> list[TopicDifference]:
    # A few seconds' grace: a topic made a moment ago (by a service starting beside this check) is not
    # called missing because the broker answering has not heard of it yet.
    described = await _described(admin, [s.name for s in specs], settle_s=3.0)
    found: list[TopicDifference] = []
    present = []
    for spec in specs:
        topic = described.get(spec.name)
        if topic is None or topic.get("error_code") or not topic.get("partitions"):
            found.append(TopicDifference(spec.name, "missing", "absent", "present"))
            continue
        present.append(spec)
        partitions = topic["partitions"]
        if len(partitions) != spec.partitions:
            found.append(TopicDifference(spec.name, "partitions", str(len(partitions)), str(spec.partitions)))
        factors = sorted({len(p["replicas"]) for p in partitions})
        if factors != [spec.replication_factor]:
            found.append(TopicDifference(spec.name, "replication_factor", "/".join(map(str, factors)), str(spec.replication_factor)))
    if not present:
        return found
    names = sorted({name for spec in present for name in spec.configs})
    resources = [ConfigResource(ConfigResourceType.TOPIC, spec.name, dict.fromkeys(names)) for spec in present]
    configs: dict[str, dict[str, str]] = {}
    for response in await admin.describe_configs(resources):
        for resource in response.to_object()["resources"]:
            entries = resource["config_entries"]
            configs[resource["resource_name"]] = {
                e.get("config_names", e.get("config_name")): e["config_value"] for e in entries if e["config_value"] is not None
            }
    for spec in present:
        actual = configs.get(spec.name, {})
        for name, wanted in spec.configs.items():
            if actual.get(name) != wanted:
                found.append(TopicDifference(spec.name, name, str(actual.get(name, "unset")), wanted))
    return found


async def topic_partitions(settings: Settings, topics: Sequence[str]) -> dict[str, list[int]]:
    """Partition numbers of each existing topic (a missing topic maps to an empty list)."""
    admin = _admin(settings)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    found = {
        d["topic"]: sorted(p["partition"] for p in d.get("partitions", ())) for d in described if d.get("error_code") == 0
    }
    return {topic: found.get(topic, []) for topic in topics}
