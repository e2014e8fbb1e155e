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

The queue is part of the notification state (family ``notify``, with the ledger): every script
starts with the state guard (shared/redis_state.py) and refuses a state that was lost or is being
rebuilt. Scripts take one JSON argument and answer JSON.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from redis.asyncio import Redis

from services.notification.ports import ClaimedDelivery, DeliverySource, WebhookDelivery
from shared.redis_connection import text
from shared.redis_state import StateGuard, guard_lua

__all__ = ["STATE", "TTL_S", "RedisWebhookQueue"]

TTL_S = 30 * 24 * 3600
STATE = "notify"  # the notification state's family (shared/redis_state.py)

_PRELUDE = guard_lua(STATE) + "local t = redis.call('TIME') ; local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

# ARGV 2: a JSON array of deliveries. Reply: how many were new.
_ENQUEUE = _PRELUDE + r"""
local created = 0
for _, d in ipairs(cjson.decode(ARGV[2])) do
  local k = P .. 'wh:' .. d.id
  if redis.call('EXISTS', k) == 0 then
    redis.call('HSET', k, 'state', 'pending', 'attempts', 0, 'partner', d.partner, 'customer', d.customer,
      'decision', d.decision, 'correlation', d.correlation, 'body', d.body, 'notice', d.notice,
      'source', d.source, 'created', now)
    redis.call('ZADD', P .. 'whq', now, d.id)
    created = created + 1
  end
end
return cjson.encode({version = version, created = created})
"""

# ARGV 2: {ttl, deliveries: [... with replay_of]}. Reply: how many were queued again.
_REQUEUE = _PRELUDE + r"""
local a = cjson.decode(ARGV[2])
local queued = 0
for _, d in ipairs(a.deliveries) do
  local marker = P .. 'whr:' .. d.replay_of
  local k = P .. 'wh:' .. d.id
  local state = redis.call('HGET', k, 'state')
  if redis.call('EXISTS', marker) == 0 and ((not state) or state == 'dead') then
    redis.call('SET', marker, d.id, 'EX', a.ttl)
    redis.call('DEL', k)
    redis.call('HSET', k, 'state', 'pending', 'attempts', 0, 'partner', d.partner, 'customer', d.customer,
      'decision', d.decision, 'correlation', d.correlation, 'body', d.body, 'notice', d.notice,
      'source', d.source, 'created', now, 'replay_of', d.replay_of)
    redis.call('ZADD', P .. 'whq', now, d.id)
    queued = queued + 1
  end
end
return cjson.encode({version = version, queued = queued})
"""

# ARGV 2: {limit, lease_ms, token}. Reply: the claimed deliveries.
_CLAIM = _PRELUDE + r"""
local a = cjson.decode(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', P .. 'whq', '-inf', now, 'LIMIT', 0, a.limit)
local out = {}
for _, id in ipairs(ids) do
  local k = P .. 'wh:' .. id
  local state = redis.call('HGET', k, 'state')
  if (not state) or state == 'done' or state == 'dead' then
    redis.call('ZREM', P .. 'whq', id)
  else
    redis.call('ZADD', P .. 'whq', now + a.lease_ms, id)
    redis.call('HSET', k, 'lease', a.token)
    if state == 'pending' then
      if redis.call('HINCRBY', k, 'attempts', 1) == 1 then redis.call('HSET', k, 'first', now) end
    end
    local f = redis.call('HMGET', k, 'state', 'attempts', 'partner', 'customer', 'decision', 'correlation',
      'body', 'notice', 'source', 'last_error', 'first', 'replay_of')
    out[#out + 1] = {id = id, state = f[1], attempts = tonumber(f[2]), partner = f[3], customer = f[4], decision = f[5],
      correlation = f[6], body = f[7] or '', notice = f[8] or '', source = f[9] or '', last_error = f[10] or '',
      age_ms = now - (tonumber(f[11]) or now), replay_of = f[12] or ''}
  end
end
return cjson.encode({version = version, claimed = out})
"""

# ARGV 2: {id, token, outcome (retry | delivered | failed), delay_ms, error}. Reply: ok 1, or 0 if the lease was lost.
_SETTLE = _PRELUDE + r"""
local a = cjson.decode(ARGV[2])
local k = P .. 'wh:' .. a.id
if redis.call('HGET', k, 'lease') ~= a.token then return cjson.encode({version = version, ok = 0}) end
if a.outcome == 'retry' then
  redis.call('HSET', k, 'last_error', a.error)
  redis.call('HDEL', k, 'lease')
  redis.call('ZADD', P .. 'whq', now + a.delay_ms, a.id)
else
  redis.call('HSET', k, 'state', a.outcome, 'last_error', a.error)
end
return cjson.encode({version = version, ok = 1})
"""

# ARGV 2: {id, token, ttl_s}. Reply: ok 1, or 0 if the lease was lost.
_FINISH = _PRELUDE + r"""
local a = cjson.decode(ARGV[2])
local k = P .. 'wh:' .. a.id
if redis.call('HGET', k, 'lease') ~= a.token then return cjson.encode({version = version, ok = 0}) end
local state = redis.call('HGET', k, 'state')
redis.call('HSET', k, 'state', state == 'delivered' and 'done' or 'dead')
redis.call('HDEL', k, 'lease', 'body', 'notice', 'source')
redis.call('ZREM', P .. 'whq', a.id)
redis.call('EXPIRE', k, a.ttl_s)
return cjson.encode({version = version, ok = 1})
"""


def _wire(d: WebhookDelivery) -> dict[str, str]:
    return {
        "id": d.notification_id, "partner": d.partner_id, "customer": d.customer_id, "decision": d.decision_id,
        "correlation": d.correlation_id, "body": d.body.decode(), "notice": d.notice.decode(), "source": d.source.to_json(),
        "replay_of": d.replay_of,
    }  # fmt: skip


class RedisWebhookQueue:
    """The durable webhook outbox (see the module doc for keys and promises).

    It is part of the notification state (`guard`, shared with the ledger): every script refuses a
    state that was lost or is being rebuilt, with `StateLost`.
    """

    def __init__(self, redis: Redis, prefix: str, guard: StateGuard | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.guard = guard or StateGuard(redis, prefix, STATE)
        self._enqueue = redis.register_script(_ENQUEUE)
        self._requeue = redis.register_script(_REQUEUE)
        self._claim = redis.register_script(_CLAIM)
        self._settle = redis.register_script(_SETTLE)
        self._finish = redis.register_script(_FINISH)

    async def _call(self, script: Any, argument: Any, *, durable: bool = False) -> dict[str, Any]:
        reply: dict[str, Any] = orjson.loads(await self.guard.run(script, orjson.dumps(argument), durable=durable))
        self.guard.seen(reply["version"])
        return reply

    async def enqueue(self, deliveries: Sequence[WebhookDelivery]) -> int:
        """Add deliveries not seen before, due now; returns how many were new. With a replica (the
        guard's durability) it returns once they reached it: the inbox notice is published next."""
        if not deliveries:
            return 0
        return int((await self._call(self._enqueue, [_wire(d) for d in deliveries], durable=True))["created"])

    async def requeue(self, deliveries: Sequence[WebhookDelivery]) -> int:
        """Queue given-up (`dead`, or expired) deliveries again, once per `replay_of`; returns how many."""
        for d in deliveries:
            if not d.replay_of:
                raise ValueError(f"delivery {d.notification_id} names no dead letter to requeue it for")
        if not deliveries:
            return 0
        return int((await self._call(self._requeue, {"ttl": TTL_S, "deliveries": [_wire(d) for d in deliveries]}))["queued"])

    async def requeued_for(self, letter_id: str) -> str | None:
        """The delivery a replayed dead letter queued again (None: it queued none yet)."""
        return text(await self.redis.get(f"{self.prefix}whr:{letter_id}")) or None

    async def claim(self, limit: int, lease_ms: int) -> list[ClaimedDelivery]:
        """Take up to `limit` due deliveries, each leased for `lease_ms`."""
        token = uuid.uuid4().hex
        reply = await self._call(self._claim, {"limit": limit, "lease_ms": lease_ms, "token": token})
        claimed = []
        for c in reply["claimed"] or []:  # cjson encodes an empty array as an object
            delivery = WebhookDelivery(
                notification_id=c["id"],
                partner_id=c["partner"],
                customer_id=c["customer"],
                decision_id=c["decision"],
                correlation_id=c["correlation"],
                body=c["body"].encode(),
                notice=c["notice"].encode(),
                source=DeliverySource.from_json(c["source"]),
                replay_of=c["replay_of"],
            )
            claimed.append(ClaimedDelivery(delivery, c["state"], int(c["attempts"]), token, c["last_error"], age_s=c["age_ms"] / 1000))
        return claimed

    async def settle(self, claimed: ClaimedDelivery, outcome: str, *, delay_ms: int = 0, error: str = "") -> bool:
        """Record a try's outcome; False if the lease was lost (another dispatcher has it now)."""
        argument = {"id": claimed.delivery.notification_id, "token": claimed.token, "outcome": outcome, "delay_ms": delay_ms, "error": error}
        return bool((await self._call(self._settle, argument))["ok"])

    async def finish(self, claimed: ClaimedDelivery) -> bool:
        """Take a delivered or failed delivery out of the queue, once its event is published."""
        argument = {"id": claimed.delivery.notification_id, "token": claimed.token, "ttl_s": TTL_S}
        return bool((await self._call(self._finish, argument))["ok"])

    def restore(self, pipe: Any, deliveries: Sequence[WebhookDelivery], now_ms: int) -> None:
        """Queue deliveries afresh, due now, in a rebuild's pipeline (under the fence)."""
        for d in deliveries:
            pipe.hset(
                f"{self.prefix}wh:{d.notification_id}",
                mapping={
                    "state": "pending", "attempts": 0, "partner": d.partner_id, "customer": d.customer_id, "decision": d.decision_id,
                    "correlation": d.correlation_id, "body": d.body, "notice": d.notice, "source": d.source.to_json(), "created": now_ms,
                },
            )  # fmt: skip
            pipe.zadd(f"{self.prefix}whq", {d.notification_id: now_ms})

    async def state(self, notification_id: str) -> dict[str, str]:
        """A delivery's state, attempts and last error (for operators and tests)."""
        fields = await self.redis.hmget(f"{self.prefix}wh:{notification_id}", "state", "attempts", "last_error", "partner")
        return {k: text(v) for k, v in zip(("state", "attempts", "last_error", "partner"), fields, strict=True) if v is not None}

    async def waiting(self) -> int:
        """Deliveries in the queue (pending, leased, or delivered/failed but not yet finished)."""
        return int(await self.redis.zcard(f"{self.prefix}whq"))
