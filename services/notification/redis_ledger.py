"""The notification ledger on Redis: which decisions were announced, so each is announced once.

    notice:<decision_id>   hash  claimed, event (the NotificationSent), published   (30 days)
    nseq:<customer>        int   highest decision sequence announced to the customer

A decision whose sequence is not above the customer's announced one is stale: it is not announced.
A notice that is not a decision (a review received or upheld, a drawdown outcome or a repayment) is
claimed with sequence 0 (or below): outside the customer's order of decisions, never stale, and it
leaves that order alone: each is told once, whatever its order.
The ledger and the webhook queue are the notification state (family ``notify``): every script
starts with the state guard (shared/redis_state.py) and refuses a state that was lost (a flush, a
restart without persistence, a failover to a replica that missed writes) or is being rebuilt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from redis.asyncio import Redis

from services.notification.ports import Claim, WebhookDelivery
from services.notification.redis_webhooks import STATE, RedisWebhookQueue
from shared.redis_state import StateGuard, guard_lua

__all__ = ["TTL_S", "RedisLedger"]

TTL_S = 30 * 24 * 3600

# ARGV 2: {ttl, claims: [[decision_id, customer_id, seq], ...]}. Reply: {version, claims: [[state, event], ...]}.
_CLAIM = guard_lua(STATE) + r"""
local a = cjson.decode(ARGV[2])
local out = {}
for _, c in ipairs(a.claims) do
  local k = P .. 'notice:' .. c[1]
  local seen = redis.call('HMGET', k, 'claimed', 'published', 'event')
  if seen[1] then
    if seen[2] == '1' then out[#out + 1] = {'done', ''}
    else out[#out + 1] = {'again', seen[3] or ''} end
  else
    local seq_key = P .. 'nseq:' .. c[2]
    local last = tonumber(redis.call('GET', seq_key) or '0')
    if c[3] > 0 and c[3] <= last then
      out[#out + 1] = {'stale', ''}
    else
      if c[3] > 0 then redis.call('SET', seq_key, c[3]) end
      redis.call('HSET', k, 'claimed', '1')
      redis.call('EXPIRE', k, a.ttl)
      out[#out + 1] = {'fresh', ''}
    end
  end
end
return cjson.encode({version = version, claims = out})
"""

# ARGV 2: a JSON array of [command, key suffix, args...]. Reply: the version.
_WRITE = guard_lua(STATE) + r"""
for _, op in ipairs(cjson.decode(ARGV[2])) do
  local args = {}
  for i = 3, #op do args[#args + 1] = op[i] end
  redis.call(op[1], P .. op[2], unpack(args))
end
return version
"""


class RedisLedger:
    def __init__(self, redis: Redis, prefix: str, guard: StateGuard | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.guard = guard or StateGuard(redis, prefix, STATE)
        self._claim = redis.register_script(_CLAIM)
        self._write = redis.register_script(_WRITE)

    async def claim(self, decisions: Sequence[tuple[str, str, int]]) -> list[Claim]:
        """Claim (decision_id, customer_id, seq) triples atomically, in order, in one round trip."""
        if not decisions:
            return []
        argument = {"ttl": TTL_S, "claims": [list(d) for d in decisions]}
        reply: dict[str, Any] = orjson.loads(await self.guard.run(self._claim, orjson.dumps(argument)))
        self.guard.seen(reply["version"])
        return [Claim(state, stored.encode() or None) for state, stored in reply["claims"]]

    async def _ops(self, ops: list[list[Any]], *, durable: bool = False) -> None:
        # Durable even with nothing to write: the batch's claims (or kept notices) are published next.
        if ops or (durable and self.guard.durability.replicas):
            self.guard.seen(await self.guard.run(self._write, orjson.dumps(ops), durable=durable))

    async def remember(self, notices: Sequence[tuple[str, bytes]]) -> None:
        """Keep each notice; with a replica (the guard's durability), return once the batch's claims reached it."""
        await self._ops([["HSETNX", f"notice:{d}", "event", payload.decode()] for d, payload in notices], durable=True)

    async def mark_published(self, decision_ids: Sequence[str]) -> None:
        # Published: a redelivery has nothing to tell again, so the kept notice can go (memory).
        await self._ops([op for d in decision_ids for op in (["HSET", f"notice:{d}", "published", "1"], ["HDEL", f"notice:{d}", "event"])])

    async def install(
        self, told: Mapping[str, float], seqs: Mapping[str, int], queue: RedisWebhookQueue,
        deliveries: Sequence[WebhookDelivery], generation: str, *, now_s: float,
    ) -> None:  # fmt: skip
        """Replace the notification state (under the fence): the decisions told (decision id -> when,
        unix seconds), each customer's highest sequence told, and the webhook deliveries still owed;
        then mark it complete as `generation`."""
        await self.guard.retire()
        for pattern in ("notice:*", "nseq:*", "wh:*", "whq"):
            doomed = [key async for key in self.redis.scan_iter(match=f"{self.prefix}{pattern}", count=1000)]
            for i in range(0, len(doomed), 500):
                await self.redis.delete(*doomed[i : i + 500])
        pipe = self.redis.pipeline(transaction=False)
        for decision_id, told_at_s in told.items():
            left = int(told_at_s + TTL_S - now_s)
            if left > 0:
                key = f"{self.prefix}notice:{decision_id}"
                pipe.hset(key, mapping={"claimed": "1", "published": "1"})
                pipe.expire(key, left)
        for customer, seq in seqs.items():
            pipe.set(f"{self.prefix}nseq:{customer}", seq)
        queue.restore(pipe, deliveries, int(now_s * 1000))
        self.guard.mark_complete(pipe, generation)
        await pipe.execute()
