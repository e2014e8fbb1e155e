"""The notification ledger on Redis: which decisions were announced, so each is announced once.

The claim script is the atomic twin of `ledger.NoticeLedger.claim` (same rules, same order: the
rules are listed there); `tests/e2e/test_notification_twins.py` holds the two equal on random streams.
Only this module knows the key layout:

    notice:<decision_id>   hash  claimed, event (the NotificationSent), published   (30 days)
    nseq:<customer>        int   highest decision sequence announced to the customer

The ledger and the webhook queue are the notification state (family ``notify``): every script
starts with the state guard (shared/redis_state.py) and refuses a state that was lost (a flush, a
restart without persistence, a failover to a replica that missed writes) or is being rebuilt; the
small writes (remember, published) are the guard's own guarded write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from redis.asyncio import Redis

from services.notification.ledger import TTL_S, LedgerState, NoticeEntry
from services.notification.ports import Claim
from services.notification.redis_webhooks import PRELUDE, STATE, RedisWebhookQueue, forgotten_at
from services.notification.webhook_queue import QueueState
from shared.redis_connection import text
from shared.redis_state import StateGuard

__all__ = ["RedisLedger"]

# ARGV 2: {ttl_ms, claims: [[decision_id, customer_id, seq], ...]}. Reply: {version, now, claims: [[state, event], ...]}.
_CLAIM = PRELUDE + r"""
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
      redis.call('PEXPIREAT', k, now + a.ttl_ms)
      out[#out + 1] = {'fresh', ''}
    end
  end
end
return cjson.encode({version = version, now = now, claims = out})
"""


class RedisLedger:
    def __init__(self, redis: Redis, prefix: str, guard: StateGuard | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.guard = guard or StateGuard(redis, prefix, STATE)
        self._claim = redis.register_script(_CLAIM)

    async def claim(self, decisions: Sequence[tuple[str, str, int]]) -> list[Claim]:
        """Claim (decision_id, customer_id, seq) triples atomically, in order, in one round trip."""
        if not decisions:
            return []
        argument = {"ttl_ms": TTL_S * 1000, "claims": [list(d) for d in decisions]}
        reply: dict[str, Any] = orjson.loads(await self.guard.run(self._claim, orjson.dumps(argument)))
        self.guard.seen(reply["version"])
        return [Claim(state, stored.encode() or None) for state, stored in reply["claims"]]

    async def remember(self, notices: Sequence[tuple[str, bytes]]) -> None:
        """Keep each notice; with a replica (the guard's durability), return once the batch's claims reached it."""
        await self.guard.write([["HSETNX", f"notice:{d}", "event", payload.decode()] for d, payload in notices], durable=True)

    async def mark_published(self, decision_ids: Sequence[str]) -> None:
        # Published: a redelivery has nothing to tell again, so the kept notice can go (memory).
        await self.guard.write([op for d in decision_ids for op in (["HSET", f"notice:{d}", "published", "1"], ["HDEL", f"notice:{d}", "event"])])

    async def now_ms(self) -> int:
        """The notification state's clock: Redis's TIME, in ms."""
        seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def install(self, state: LedgerState, queue: RedisWebhookQueue, deliveries: QueueState, generation: str) -> None:
        """Replace the notification state (under the fence) with the ledger `state` and the webhook
        deliveries still owed (`ledger.installed`, `webhook_queue.restored`); then mark it complete as
        `generation`. The replayed letters the queue remembers stay."""
        await self.guard.retire()
        for pattern in ("notice:*", "nseq:*", "wh:*", "whq"):
            doomed = [key async for key in self.redis.scan_iter(match=f"{self.prefix}{pattern}", count=1000)]
            for i in range(0, len(doomed), 500):
                await self.redis.delete(*doomed[i : i + 500])
        pipe = self.redis.pipeline(transaction=False)
        for decision_id, entry in state.notices.items():
            key = f"{self.prefix}notice:{decision_id}"
            pipe.hset(key, mapping=_notice_fields(entry))
            if entry.expires_at is not None:
                pipe.pexpireat(key, entry.expires_at)
        for customer, seq in state.seqs.items():
            pipe.set(f"{self.prefix}nseq:{customer}", seq)
        queue.write(pipe, deliveries)
        self.guard.mark_complete(pipe, generation)
        await pipe.execute()

    async def snapshot(self) -> LedgerState:
        """Every value the ledger holds under this prefix (the twins test compares it with the pure ledger's)."""
        state = LedgerState()
        async for key in self.redis.scan_iter(match=f"{self.prefix}n*", count=1000):  # one pass: notice:, nseq: (and notify:)
            family, _, name = text(key).removeprefix(self.prefix).partition(":")
            if family == "nseq":
                state.seqs[name] = int(text(await self.redis.get(key)))
            elif family == "notice":
                raw = {text(k): v for k, v in (await self.redis.hgetall(key)).items()}
                state.notices[name] = NoticeEntry(
                    claimed=text(raw.pop("claimed", b"")) == "1",
                    published=text(raw.pop("published", b"")) == "1",
                    event=raw.pop("event", None),
                    expires_at=await forgotten_at(self.redis, key),
                    **raw,  # a field the ledger does not know is an error
                )
        return state


def _notice_fields(entry: NoticeEntry) -> dict[str, str | bytes]:
    fields: dict[str, str | bytes] = {}
    if entry.claimed:
        fields["claimed"] = "1"
    if entry.published:
        fields["published"] = "1"
    if entry.event is not None:
        fields["event"] = entry.event
    return fields
