"""The fleet's topics on the broker: created by the project (never by auto-creation), and looked up."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.contracts import Topics
from shared.messaging.connection import aiokafka_kwargs
from shared.settings import Settings

__all__ = ["ensure_topics", "topic_partitions"]


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the fleet's topics if missing (never by broker auto-creation). Returns those created."""
    topics: Topics = settings.topics
    # The decision log and the policy history; and, kept as long as the decisions they explain, the
    # scores they were made on, what each customer was told, and the reviews and suspensions.
    keep_forever = {topics.windows, topics.policy, topics.scores, topics.notifications, topics.reviews}
    single_partition = {topics.policy}
    wanted = [
        NewTopic(
            name,
            num_partitions=1 if name in single_partition else settings.topic_partitions,
            replication_factor=settings.topic_replication_factor,
            topic_configs={"retention.ms": "-1" if name in keep_forever else str(settings.topic_retention_ms)},
        )
        for name in topics.all()
    ]
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(settings), request_timeout_ms=15_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process created them first
            deadline = asyncio.get_running_loop().time() + 15
            while asyncio.get_running_loop().time() < deadline:
                if {t.name for t in missing} <= set(await admin.list_topics()):
                    break
                await asyncio.sleep(0.1)
        return [t.name for t in missing]
    finally:
        await admin.close()


async def topic_partitions(settings: Settings, topics: Sequence[str]) -> dict[str, list[int]]:
    """Partition numbers of each existing topic (a missing topic maps to an empty list)."""
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(settings), request_timeout_ms=15_000)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    found = {
        d["topic"]: sorted(p["partition"] for p in d.get("partitions", ())) for d in described if d.get("error_code") == 0
    }
    return {topic: found.get(topic, []) for topic in topics}
