"""Decision references to where each decision is on `credit.windows`, in Redis (derived, rebuildable).

    xref:<3 characters>   hash  the reference's other 9 characters -> customer|decided_at ms|published ms

A reference (`CW-XXXX-XXXX-XXXX`) is 12 characters; the first three pick one of 32,768 small hashes,
which Redis keeps as compact listpacks (about 90 bytes a decision, measured at 100,000). Written just before a decision
is published, so a published decision is always found; rebuilt with the book from `credit.windows`
(the record's timestamp is its publication). Kept as long as the decisions: a reference must lead to
its decision for as long as the decision log keeps it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from redis.asyncio import Redis

from services.policy.ports import IndexEntry
from shared.contracts import Decision
from shared.redis_connection import text
from shared.references import reference_of

__all__ = ["RedisReferences"]


def _slot(reference: str) -> tuple[str, str]:
    code = reference.removeprefix("CW-").replace("-", "")
    return code[:3], code[3:]


class RedisReferences:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    async def record(self, decisions: Sequence[Decision]) -> None:
        await self.install((d, int(time.time() * 1000)) for d in decisions)

    async def install(self, decisions: Iterable[tuple[Decision, int]]) -> None:
        """Index decisions with the time each was (or is about to be) published, ms."""
        pipe = self.redis.pipeline(transaction=False)
        count = 0
        for decision, published_ms in decisions:
            bucket, rest = _slot(reference_of(decision.decision_id))
            decided_ms = int(decision.occurred_at.timestamp() * 1000)
            pipe.hset(f"{self.prefix}xref:{bucket}", rest, f"{decision.customer_id}|{decided_ms}|{published_ms}")
            count += 1
            if count % 1000 == 0:
                await pipe.execute()
        if count % 1000:
            await pipe.execute()

    async def find(self, reference: str) -> IndexEntry | None:
        bucket, rest = _slot(reference)
        value = await self.redis.hget(f"{self.prefix}xref:{bucket}", rest)
        if not value:
            return None
        customer, decided_ms, published_ms = text(value).split("|")
        return IndexEntry(customer, int(decided_ms), int(published_ms))
