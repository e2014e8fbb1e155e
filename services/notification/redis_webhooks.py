"""The webhook outbox on Redis: deliveries wait here, with their next-attempt time, until delivered.

    wh:<notification_id>   hash  state, attempts, partner, customer, decision, correlation, body,
                                 notice, source, lease, last_error, created, first (ms of the first
                                 try's claim: the retry budget counts from it), replay_of
                                 (kept 30 days once finished)
    whq                    zset  notification_id -> when it is due (ms, Redis clock)
    whr:<dead letter id>   string  a replayed give-up was queued again (30 days): once per letter

A delivery is `pending` until a POST succeeds (`delivered`) or is given up (`failed`); then its
NotificationSent or dead letter is published and it is finished (`done` / `dead`, out of the queue).
A `dead` delivery whose dead letter an operator replays is queued again from scratch, once.

Claiming is one Lua script: it takes the due deliveries and pushes their due time past a lease in
the same step, so two replicas never hold the same delivery at once. A dispatcher that dies holding
a lease only delays the delivery until the lease runs out; then another claims it. Times come from
Redis's own clock, so replicas with skewed clocks agree on what is due.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from services.notification.ports import ClaimedDelivery, DeliverySource, WebhookDelivery
from shared.redis_connection import text

__all__ = ["RedisWebhookQueue"]

TTL_S = 30 * 24 * 3600

_NOW = "local t = redis.call('TIME') ; local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

# ARGV: prefix, then per delivery: id, partner, customer, decision, correlation, body, notice, source
_ENQUEUE = (
    _NOW
    + r"""
local P = ARGV[1]
local created = 0
for i = 2, #ARGV, 8 do
  local k = P .. 'wh:' .. ARGV[i]
  if redis.call('EXISTS', k) == 0 then
    redis.call('HSET', k, 'state', 'pending', 'attempts', 0, 'partner', ARGV[i + 1], 'customer', ARGV[i + 2],
      'decision', ARGV[i + 3], 'correlation', ARGV[i + 4], 'body', ARGV[i + 5], 'notice', ARGV[i + 6],
      'source', ARGV[i + 7], 'created', now)
    redis.call('ZADD', P .. 'whq', now, ARGV[i])
    created = created + 1
  end
end
return created
"""
)

# ARGV: prefix, limit, lease_ms, token
_CLAIM = (
    _NOW
    + r"""
local P, limit, lease, token = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local ids = redis.call('ZRANGEBYSCORE', P .. 'whq', '-inf', now, 'LIMIT', 0, limit)
local out = {}
for _, id in ipairs(ids) do
  local k = P .. 'wh:' .. id
  local state = redis.call('HGET', k, 'state')
  if (not state) or state == 'done' or state == 'dead' then
    redis.call('ZREM', P .. 'whq', id)
  else
    redis.call('ZADD', P .. 'whq', now + lease, id)
    redis.call('HSET', k, 'lease', token)
    if state == 'pending' then
      if redis.call('HINCRBY', k, 'attempts', 1) == 1 then redis.call('HSET', k, 'first', now) end
    end
    local f = redis.call('HMGET', k, 'state', 'attempts', 'partner', 'customer', 'decision', 'correlation',
      'body', 'notice', 'source', 'last_error', 'first', 'replay_of')
    table.insert(out, id)
    for j = 1, 10 do table.insert(out, f[j] or '') end
    table.insert(out, tostring(now - (tonumber(f[11]) or now)))
    table.insert(out, f[12] or '')
  end
end
return out
"""
)

# ARGV: prefix, id, token, outcome (retry | delivered | failed), delay_ms, error
_SETTLE = (
    _NOW
    + r"""
local P, id, token, outcome = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local k = P .. 'wh:' .. id
if redis.call('HGET', k, 'lease') ~= token then return 0 end
if outcome == 'retry' then
  redis.call('HSET', k, 'last_error', ARGV[6])
  redis.call('HDEL', k, 'lease')
  redis.call('ZADD', P .. 'whq', now + tonumber(ARGV[5]), id)
else
  redis.call('HSET', k, 'state', outcome, 'last_error', ARGV[6])
end
return 1
"""
)

# ARGV: prefix, ttl, then per delivery: letter (replay_of), id, partner, customer, decision, correlation,
# body, notice, source
_REQUEUE = (
    _NOW
    + r"""
local P, ttl = ARGV[1], tonumber(ARGV[2])
local queued = 0
for i = 3, #ARGV, 9 do
  local marker = P .. 'whr:' .. ARGV[i]
  local k = P .. 'wh:' .. ARGV[i + 1]
  local state = redis.call('HGET', k, 'state')
  if redis.call('EXISTS', marker) == 0 and ((not state) or state == 'dead') then
    redis.call('SET', marker, ARGV[i + 1], 'EX', ttl)
    redis.call('DEL', k)
    redis.call('HSET', k, 'state', 'pending', 'attempts', 0, 'partner', ARGV[i + 2], 'customer', ARGV[i + 3],
      'decision', ARGV[i + 4], 'correlation', ARGV[i + 5], 'body', ARGV[i + 6], 'notice', ARGV[i + 7],
      'source', ARGV[i + 8], 'created', now, 'replay_of', ARGV[i])
    redis.call('ZADD', P .. 'whq', now, ARGV[i + 1])
    queued = queued + 1
  end
end
return queued
"""
)

# ARGV: prefix, id, token, ttl
_FINISH = r"""
local P, id, token = ARGV[1], ARGV[2], ARGV[3]
local k = P .. 'wh:' .. id
if redis.call('HGET', k, 'lease') ~= token then return 0 end
local state = redis.call('HGET', k, 'state')
redis.call('HSET', k, 'state', state == 'delivered' and 'done' or 'dead')
redis.call('HDEL', k, 'lease', 'body', 'notice', 'source')
redis.call('ZREM', P .. 'whq', id)
redis.call('EXPIRE', k, tonumber(ARGV[4]))
return 1
"""


def _b(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


class RedisWebhookQueue:
    """The durable webhook outbox (see the module doc for keys and promises)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._enqueue = redis.register_script(_ENQUEUE)
        self._claim = redis.register_script(_CLAIM)
        self._settle = redis.register_script(_SETTLE)
        self._finish = redis.register_script(_FINISH)
        self._requeue = redis.register_script(_REQUEUE)

    async def enqueue(self, deliveries: Sequence[WebhookDelivery]) -> int:
        """Add deliveries not seen before, due now; returns how many were new."""
        if not deliveries:
            return 0
        args: list[str | bytes] = [self.prefix]
        for d in deliveries:
            args += [
                d.notification_id, d.partner_id, d.customer_id, d.decision_id, d.correlation_id,
                d.body, d.notice, d.source.to_json(),
            ]  # fmt: skip
        return int(await self._enqueue(keys=[], args=args))

    async def requeue(self, deliveries: Sequence[WebhookDelivery]) -> int:
        """Queue given-up (`dead`, or expired) deliveries again, once per `replay_of`; returns how many."""
        args: list[str | bytes | int] = [self.prefix, TTL_S]
        for d in deliveries:
            if not d.replay_of:
                raise ValueError(f"delivery {d.notification_id} names no dead letter to requeue it for")
            args += [
                d.replay_of, d.notification_id, d.partner_id, d.customer_id, d.decision_id, d.correlation_id,
                d.body, d.notice, d.source.to_json(),
            ]  # fmt: skip
        return int(await self._requeue(keys=[], args=args)) if deliveries else 0

    async def claim(self, limit: int, lease_ms: int) -> list[ClaimedDelivery]:
        """Take up to `limit` due deliveries, each leased for `lease_ms`."""
        token = uuid.uuid4().hex
        answer = await self._claim(keys=[], args=[self.prefix, limit, lease_ms, token])
        claimed = []
        for i in range(0, len(answer), 13):
            (the_id, state, attempts, partner, customer, decision, correlation, body, notice, source, error, age_ms, replay_of) = (
                answer[i : i + 13]
            )
            delivery = WebhookDelivery(
                notification_id=text(the_id),
                partner_id=text(partner),
                customer_id=text(customer),
                decision_id=text(decision),
                correlation_id=text(correlation),
                body=_b(body),
                notice=_b(notice),
                source=DeliverySource.from_json(_b(source)),
                replay_of=text(replay_of),
            )
            claimed.append(
                ClaimedDelivery(delivery, text(state), int(attempts), token, text(error), age_s=int(text(age_ms)) / 1000)  # type: ignore[arg-type]
            )
        return claimed

    async def settle(self, claimed: ClaimedDelivery, outcome: str, *, delay_ms: int = 0, error: str = "") -> bool:
        """Record a try's outcome; False if the lease was lost (another dispatcher has it now)."""
        args = [self.prefix, claimed.delivery.notification_id, claimed.token, outcome, delay_ms, error]
        return bool(await self._settle(keys=[], args=args))

    async def finish(self, claimed: ClaimedDelivery) -> bool:
        """Take a delivered or failed delivery out of the queue, once its event is published."""
        args = [self.prefix, claimed.delivery.notification_id, claimed.token, TTL_S]
        return bool(await self._finish(keys=[], args=args))

    async def state(self, notification_id: str) -> dict[str, str]:
        """A delivery's state, attempts and last error (for operators and tests)."""
        fields = await self.redis.hmget(
            f"{self.prefix}wh:{notification_id}", "state", "attempts", "last_error", "partner"
        )
        return {
            k: text(v)
            for k, v in zip(("state", "attempts", "last_error", "partner"), fields, strict=True)
            if v is not None
        }

    async def waiting(self) -> int:
        """Deliveries in the queue (pending, leased, or delivered/failed but not yet finished)."""
        return int(await self.redis.zcard(f"{self.prefix}whq"))
