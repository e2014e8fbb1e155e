"""Decision references to where each decision is on `credit.windows`, in Redis (derived, rebuildable).

    xref:<3 characters>   hash  the reference's other 9 characters -> customer|decided_at ms|published ms

A reference (`CW-XXXX-XXXX-XXXX`) is 12 characters; the first three pick one of 32,768 small hashes,
which Redis keeps as compact listpacks (about 90 bytes a decision, measured at 100,000). Written just before a decision
is published, so a published decision is always found; rebuilt with the book from `credit.windows`
(the record's timestamp is its publication). Kept as long as the decisions: a reference must lead to
its decision for as long as the decision log keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson
from redis.asyncio import Redis

from services.policy.record.ports import IndexEntry
from shared.clock import Clock
from shared.contracts import Decision
from shared.redis_connection import text
from shared.references import reference_of

__all__ = ["RedisReferences"]


def _slot(reference: str) -> tuple[str, str]:
    code = reference.removeprefix("CW-").replace("-", "")
    return code[:3], code[3:]


# Every entry of a batch in one command: ARGV 1 the key prefix, ARGV 2 a JSON array of bucket, field,
# value triples (the book's scripts take their keys the same way). A pipeline of one HSET per decision
# cost the policy about 9 us of client CPU per decision in redis-py (a command packed and a reply
# parsed each), and so would three arguments per decision to a script; one JSON string, well under
# one. Same writes.
_INSTALL = """
local entries = cjson.decode(ARGV[2])
for i = 1, #entries, 3 do
  redis.call('HSET', ARGV[1] .. entries[i], entries[i + 1], entries[i + 2])
end
return #entries / 3
"""
# Entries per script call: bounded, so one call never holds Redis long.
_CHUNK = 1000


class RedisReferences:
    def __init__(self, redis: Redis, prefix: str, clock: Clock) -> None:
        self.redis = redis
        self.prefix = prefix
        self.clock = clock
        self._install = redis.register_script(_INSTALL)

    async def record(self, decisions: Sequence[Decision]) -> None:
        published_ms = int(self.clock.now().timestamp() * 1000)
        await self.install((d, published_ms) for d in decisions)

    async def install(self, decisions: Iterable[tuple[Decision, int]]) -> None:
        """Index decisions with the time each was (or is about to be) published, ms."""
        entries: list[str] = []
        for decision, published_ms in decisions:
            bucket, rest = _slot(reference_of(decision.decision_id))
            decided_ms = int(decision.occurred_at.timestamp() * 1000)
            entries += (bucket, rest, f"{decision.customer_id}|{decided_ms}|{published_ms}")
            if len(entries) == 3 * _CHUNK:
                await self._install(args=(f"{self.prefix}xref:", orjson.dumps(entries)))
                entries = []
        if entries:
            await self._install(args=(f"{self.prefix}xref:", orjson.dumps(entries)))

    async def find(self, reference: str) -> IndexEntry | None:
        bucket, rest = _slot(reference)
        value = await self.redis.hget(f"{self.prefix}xref:{bucket}", rest)
        if not value:
            return None
        customer, decided_ms, published_ms = text(value).split("|")
        return IndexEntry(customer, int(decided_ms), int(published_ms))
