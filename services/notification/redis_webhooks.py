"""The webhook queue on Redis: deliveries wait here, with their next-attempt time, until delivered.

Every script is the atomic twin of a method of `webhook_queue.DeliveryQueue` (same rules, same
order: the rules are listed there); `tests/e2e/test_notification_twins.py` holds the two equal on
random streams. Only this module knows the key layout:

    wh:<notification_id>   hash  state, attempts, partner, customer, decision, correlation, body,
                                 notice, source, lease, last_error, created, first (ms of the first
                                 try's claim: the retry budget counts from it), replay_of
                                 (kept 30 days once finished)
    whq                    zset  notification_id -> when it is due (ms, Redis clock)
    whr:<dead letter id>   string  a replayed give-up was queued again (30 days): once per letter

Claiming is one Lua script: it takes the due deliveries and pushes their due time past a lease in
the same step, so two replicas never hold the same delivery at once. A dispatcher that dies holding
a lease only delays the delivery until the lease runs out; then another claims it. Times come from
Redis's own clock (TIME), so replicas with skewed clocks agree on what is due; every reply names
the time its script used (`now`), the clock the pure twin is given. Expiries are absolute
(PEXPIREAT) for the same reason.

The queue is part of the notification state (family ``notify``, with the ledger): every script
starts with the state guard (shared/redis_state.py) and refuses a state that was lost or is being
rebuilt. Scripts take one JSON argument and answer JSON.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import orjson
from redis.asyncio import Redis

from services.notification.ports import ClaimedDelivery, DeliverySource, WebhookDelivery
from services.notification.webhook_queue import TTL_S, QueuedDelivery, QueueState, Replayed, require_letters
from shared.redis_connection import text
from shared.redis_state import StateGuard, guard_lua

__all__ = ["PRELUDE", "STATE", "RedisWebhookQueue", "forgotten_at"]

STATE = "notify"  # the notification state's family (shared/redis_state.py)

# The state guard, then `now`: Redis's time in ms, the clock of every rule of the notification state.
PRELUDE = guard_lua(STATE) + "local t = redis.call('TIME') ; local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

# ARGV 2: a JSON array of deliveries. Reply: how many were new (DeliveryQueue.enqueue).
_ENQUEUE = PRELUDE + r"""
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
return cjson.encode({version = version, now = now, created = created})
"""

# ARGV 2: {ttl_ms, deliveries: [... with replay_of]}. Reply: how many were queued again (DeliveryQueue.requeue).
_REQUEUE = PRELUDE + r"""
local a = cjson.decode(ARGV[2])
local queued = 0
for _, d in ipairs(a.deliveries) do
  local marker = P .. 'whr:' .. d.replay_of
  local k = P .. 'wh:' .. d.id
  local state = redis.call('HGET', k, 'state')
  if redis.call('EXISTS', marker) == 0 and ((not state) or state == 'dead') then
    redis.call('SET', marker, d.id, 'PXAT', now + a.ttl_ms)
    redis.call('DEL', k)
    redis.call('HSET', k, 'state', 'pending', 'attempts', 0, 'partner', d.partner, 'customer', d.customer,
      'decision', d.decision, 'correlation', d.correlation, 'body', d.body, 'notice', d.notice,
      'source', d.source, 'created', now, 'replay_of', d.replay_of)
    redis.call('ZADD', P .. 'whq', now, d.id)
    queued = queued + 1
  end
end
return cjson.encode({version = version, now = now, queued = queued})
"""

# ARGV 2: {limit, lease_ms, token}. Reply: the claimed deliveries (DeliveryQueue.claim).
_CLAIM = PRELUDE + r"""
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
return cjson.encode({version = version, now = now, claimed = out})
"""

# ARGV 2: {id, token, outcome (retry | delivered | failed), delay_ms, error}. Reply: ok 1, or 0 if the lease
# was lost (DeliveryQueue.settle).
_SETTLE = PRELUDE + r"""
local a = cjson.decode(ARGV[2])
local k = P .. 'wh:' .. a.id
if redis.call('HGET', k, 'lease') ~= a.token then return cjson.encode({version = version, now = now, ok = 0}) end
if a.outcome == 'retry' then
  redis.call('HSET', k, 'last_error', a.error)
  redis.call('HDEL', k, 'lease')
  redis.call('ZADD', P .. 'whq', now + a.delay_ms, a.id)
else
  redis.call('HSET', k, 'state', a.outcome, 'last_error', a.error)
end
return cjson.encode({version = version, now = now, ok = 1})
"""

# ARGV 2: {id, token, ttl_ms}. Reply: ok 1, or 0 if the lease was lost (DeliveryQueue.finish).
_FINISH = PRELUDE + r"""
local a = cjson.decode(ARGV[2])
local k = P .. 'wh:' .. a.id
if redis.call('HGET', k, 'lease') ~= a.token then return cjson.encode({version = version, now = now, ok = 0}) end
local state = redis.call('HGET', k, 'state')
redis.call('HSET', k, 'state', state == 'delivered' and 'done' or 'dead')
redis.call('HDEL', k, 'lease', 'body', 'notice', 'source')
redis.call('ZREM', P .. 'whq', a.id)
redis.call('PEXPIREAT', k, now + a.ttl_ms)
return cjson.encode({version = version, now = now, ok = 1})
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
        require_letters(deliveries)
        if not deliveries:
            return 0
        argument = {"ttl_ms": TTL_S * 1000, "deliveries": [_wire(d) for d in deliveries]}
        return int((await self._call(self._requeue, argument))["queued"])

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
        argument = {"id": claimed.delivery.notification_id, "token": claimed.token, "ttl_ms": TTL_S * 1000}
        return bool((await self._call(self._finish, argument))["ok"])

    def write(self, pipe: Any, state: QueueState) -> None:
        """Write `state`'s values in a rebuild's pipeline (under the fence): `webhook_queue.restored` for a rebuild."""
        for notification_id, entry in state.deliveries.items():
            key = f"{self.prefix}wh:{notification_id}"
            pipe.hset(key, mapping=_delivery_fields(entry))
            if entry.expires_at is not None:
                pipe.pexpireat(key, entry.expires_at)
        if state.due:
            pipe.zadd(f"{self.prefix}whq", state.due)
        for letter, replayed in state.replayed.items():
            pipe.set(f"{self.prefix}whr:{letter}", replayed.notification_id, pxat=replayed.expires_at)

    async def state(self, notification_id: str) -> dict[str, str]:
        """A delivery's state, attempts and last error (for operators and tests)."""
        fields = await self.redis.hmget(f"{self.prefix}wh:{notification_id}", "state", "attempts", "last_error", "partner")
        return {k: text(v) for k, v in zip(("state", "attempts", "last_error", "partner"), fields, strict=True) if v is not None}

    async def waiting(self) -> int:
        """Deliveries in the queue (pending, leased, or delivered/failed but not yet finished)."""
        return int(await self.redis.zcard(f"{self.prefix}whq"))

    async def snapshot(self) -> QueueState:
        """Every value the queue holds under this prefix (the twins test compares it with the pure queue's)."""
        state = QueueState()
        for member, score in await self.redis.zrange(f"{self.prefix}whq", 0, -1, withscores=True):
            state.due[text(member)] = int(score)
        async for key in self.redis.scan_iter(match=f"{self.prefix}wh*", count=1000):  # one pass: wh:, whr: (and whq)
            family, _, name = text(key).removeprefix(self.prefix).partition(":")
            if family == "wh":
                raw = {text(k): v for k, v in (await self.redis.hgetall(key)).items()}
                state.deliveries[name] = _delivery(raw, await forgotten_at(self.redis, key))
            elif family == "whr":
                expires_at = await forgotten_at(self.redis, key)
                state.replayed[name] = Replayed(text(await self.redis.get(key)), expires_at if expires_at is not None else -1)
        return state


async def forgotten_at(redis: Redis, key: Any) -> int | None:
    """When Redis forgets the key (ms, its clock), None when never."""
    at = int(await redis.pexpiretime(key))
    return at if at >= 0 else None


_NUMBERS = ("attempts", "created", "first")
_BYTES = ("body", "notice")


def _delivery(raw: Mapping[str, Any], expires_at: int | None) -> QueuedDelivery:
    """A delivery read back: every field the hash holds (an unknown one is an error), absent ones None."""
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name in _NUMBERS:
            values[name] = int(float(text(value)))
        elif name in _BYTES:
            values[name] = value if isinstance(value, bytes) else str(value).encode()
        else:
            values[name] = text(value)
    return QueuedDelivery(**values, expires_at=expires_at)


def _delivery_fields(entry: QueuedDelivery) -> dict[str, Any]:
    # Absent in Redis reads back as None; the expiry is the key's, not a field.
    return {name: value for name, value in asdict(entry).items() if value is not None and name != "expires_at"}
