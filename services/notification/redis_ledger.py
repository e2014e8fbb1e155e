"""The notification ledger on Redis: which decisions were announced, so each is announced once.

    notice:<decision_id>   hash  claimed, event (the NotificationSent), published   (30 days)
    nseq:<customer>        int   highest decision sequence announced to the customer

A decision whose sequence is not above the customer's announced one is stale: it is not announced.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from services.notification.ports import Claim
from shared.redis_connection import text

__all__ = ["RedisLedger"]

TTL_S = 30 * 24 * 3600

# ARGV: 1 prefix, 2 ttl, then triples: decision_id, customer_id, seq
_CLAIM = r"""
local P, ttl = ARGV[1], tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV, 3 do
  local k = P .. 'notice:' .. ARGV[i]
  local seen = redis.call('HMGET', k, 'claimed', 'published', 'event')
  if seen[1] then
    if seen[2] == '1' then table.insert(out, 'done') ; table.insert(out, '')
    else table.insert(out, 'again') ; table.insert(out, seen[3] or '') end
  else
    local seq_key = P .. 'nseq:' .. ARGV[i + 1]
    local last = tonumber(redis.call('GET', seq_key) or '0')
    if tonumber(ARGV[i + 2]) <= last then
      table.insert(out, 'stale') ; table.insert(out, '')
    else
      redis.call('SET', seq_key, ARGV[i + 2])
      redis.call('HSET', k, 'claimed', '1')
      redis.call('EXPIRE', k, ttl)
      table.insert(out, 'fresh') ; table.insert(out, '')
    end
  end
end
return out
"""


class RedisLedger:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._claim = redis.register_script(_CLAIM)

    async def claim(self, decisions: Sequence[tuple[str, str, int]]) -> list[Claim]:
        """Claim (decision_id, customer_id, seq) triples atomically, in order, in one round trip."""
        if not decisions:
            return []
        args: list[str | int] = [self.prefix, TTL_S]
        for decision_id, customer_id, seq in decisions:
            args += [decision_id, customer_id, seq]
        answer = await self._claim(keys=[], args=args)
        claims = []
        for i in range(0, len(answer), 2):
            stored = answer[i + 1]
            stored_bytes = stored.encode() if isinstance(stored, str) else stored
            claims.append(Claim(text(answer[i]), stored_bytes or None))  # type: ignore[arg-type]
        return claims

    async def remember(self, notices: Sequence[tuple[str, bytes]]) -> None:
        if notices:
            pipe = self.redis.pipeline(transaction=False)
            for decision_id, payload in notices:
                pipe.hsetnx(f"{self.prefix}notice:{decision_id}", "event", payload)
            await pipe.execute()

    async def mark_published(self, decision_ids: Sequence[str]) -> None:
        if decision_ids:
            pipe = self.redis.pipeline(transaction=False)
            for decision_id in decision_ids:
                pipe.hset(f"{self.prefix}notice:{decision_id}", "published", "1")
            await pipe.execute()
