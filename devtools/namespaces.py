"""Deleting a namespace's topics and Redis keys: tests, the benchmark and the fault suite clean up after themselves."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient

from shared.messaging import aiokafka_kwargs
from shared.redis_connection import make_redis
from shared.settings import Settings

__all__ = ["delete_namespace"]


async def delete_namespace(settings: Settings) -> None:
    """Delete a namespace's topics and Redis keys (test and benchmark runs clean up after themselves)."""
    if not settings.topic_namespace:
        raise ValueError("refusing to delete the production namespace")
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(settings), request_timeout_ms=15_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [t for t in existing if t.startswith(f"{settings.topic_namespace}.")]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()
    redis = make_redis(settings)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{settings.redis_prefix}*", count=1000)]
        for i in range(0, len(keys), 500):
            await redis.delete(*keys[i : i + 500])
    finally:
        await redis.aclose()
