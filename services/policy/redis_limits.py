"""The limit store on Redis: budgets, current windows, decision sequences. Derived state, rebuildable.

Every change is one Lua script, so it is atomic across policy replicas: a reservation either fits
the budget and is taken, or it is not; an application is decided once (a second delivery gets the
first answer back). Keys, under a prefix (``cw:`` or ``cw:<namespace>:``):

    budget:<segment>     hash  exposure (CNY), el_fen (expected loss, in fen: integers add exactly)
    programme:<name>     hash  reserved                     boosted parts reserved
    app:<record>         hash  the decision of one application (idempotency record), its event;
                               record = application id, or application id + '~r' for a re-decision
    seq:<customer>       int   the customer's decision sequence (monotonic)
    window:<customer>    hash  the customer's current window: status, limit, apr, valid_until,
                               decision_id, decision_seq, policy_version, ...
    expiry               zset  open applications by valid_until (ms)
    open                 set   open applications
    closing              zset  lifecycle closures decided but not yet published
    deferred             zset  records closed for maintenance, by when to decide them again

Single-node Redis (the scripts touch several keys; on a cluster they would need hash tags).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from services.policy.decisions import Allocation, Proposal
from services.policy.document import PolicyDocument
from services.policy.rules import Close, Offer
from shared.redis_connection import text

__all__ = ["SEGMENTS", "CurrentWindow", "LifecycleClosure", "RedisLimits"]

SEGMENTS = ("individual", "small_business")

_COMMON = r"""
local P = ARGV[1]
local function release(app_id)
  local k = P .. 'app:' .. app_id
  local a = redis.call('HMGET', k, 'status', 'granted', 'el_fen', 'segment', 'programme', 'part')
  if a[1] ~= 'open' then return 0 end
  local bkey = P .. 'budget:' .. a[4]
  redis.call('HINCRBY', bkey, 'exposure', -tonumber(a[2]))
  redis.call('HINCRBY', bkey, 'el_fen', -tonumber(a[3] or '0'))
  if a[5] and a[5] ~= '' and tonumber(a[6] or '0') > 0 then
    redis.call('HINCRBY', P .. 'programme:' .. a[5], 'reserved', -tonumber(a[6]))
  end
  redis.call('HSET', k, 'status', 'released')
  redis.call('ZREM', P .. 'expiry', app_id)
  redis.call('SREM', P .. 'open', app_id)
  return tonumber(a[2])
end
local function rdown(x, step) return math.floor(x / step + 1e-9) * step end
"""

# ARGV: 1 prefix, 2 application_id, 3 customer_id, 4 segment, 5 kind (open|close), 6 decision_id,
#  7 offer limit, 8 programme name, 9 programme part, 10 programme budget, 11 el_rate, 12 margin,
#  13 exposure cap, 14 el cap, 15 pacing enabled (1/0), 16 max_margin, 17 steepness, 18 round_to,
#  19 min_limit, 20 valid_until ms, 21 supersedes (1/0), 22 apr, 23 policy label, 24 category,
#  25 reason, 26 region, 27 channel, 28 locale, 29 partner, 30 model_id, 31 application_id,
#  32 score json to decide again later ('' if none), 33 when (ms), 34 decided at (ms)
# ARGV 2 is the decision's record key: the application id, or for a re-decision the application id + '~r'.
_DECIDE = _COMMON + r"""
local app_id, customer, segment, kind = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local app_key = P .. 'app:' .. app_id
local seen = redis.call('HMGET', app_key, 'seq', 'granted', 'refusal', 'part', 'available', 'event', 'published', 'budget_bound', 'el_fen', 'decided_at')
if seen[1] then
  return {'existing', seen[1], seen[2] or '0', seen[3] or '', seen[4] or '0', seen[5] or '0', seen[6] or '', seen[7] or '0', seen[8] or '0', seen[9] or '0', seen[10] or '0'}
end
local granted, refusal, part, available, budget_bound = 0, '', 0, 0, 0
local el_fen = 0
if kind == 'open' then
  local offer = tonumber(ARGV[7])
  local el_rate, margin = tonumber(ARGV[11]), tonumber(ARGV[12])
  local cap_exp, cap_el = tonumber(ARGV[13]), tonumber(ARGV[14])
  local step, min_limit = tonumber(ARGV[18]), tonumber(ARGV[19])
  local bkey = P .. 'budget:' .. segment
  local b = redis.call('HMGET', bkey, 'exposure', 'el_fen')
  local res_exp, res_el = tonumber(b[1] or '0'), tonumber(b[2] or '0') / 100
  local room_exp = math.max(0, cap_exp - res_exp)
  local room_loss = room_exp
  if el_rate > 0 then room_loss = math.max(0, cap_el - res_el) / el_rate end
  available = rdown(math.min(room_exp, room_loss), step)
  local u_exp, u_el = 1, 1
  if cap_exp > 0 then u_exp = res_exp / cap_exp end
  if cap_el > 0 then u_el = res_el / cap_el end
  local u = math.min(1, math.max(u_exp, u_el, 0))
  local required = 0
  if ARGV[15] == '1' then required = tonumber(ARGV[16]) * (u ^ tonumber(ARGV[17])) end
  if margin < required then
    refusal = 'budget_paced'
  else
    local limit = offer
    part = tonumber(ARGV[9])
    local pkey = P .. 'programme:' .. ARGV[8]
    if part > 0 and ARGV[8] ~= '' then
      local room = math.max(0, tonumber(ARGV[10]) - tonumber(redis.call('HGET', pkey, 'reserved') or '0'))
      if part > room then limit = limit - (part - room); part = room end
    end
    limit = rdown(math.min(limit, available), step)
    if limit < min_limit then
      refusal = 'budget_exhausted'; part = 0
    else
      granted = limit
      part = math.min(part, limit)
      if limit < offer and limit == available then budget_bound = 1 end
      el_fen = math.floor(granted * el_rate * 100 + 0.5)
      redis.call('HINCRBY', bkey, 'exposure', granted)
      redis.call('HINCRBY', bkey, 'el_fen', el_fen)
      if part > 0 then redis.call('HINCRBY', pkey, 'reserved', part) end
    end
  end
end
local seq = redis.call('INCR', P .. 'seq:' .. customer)
local status = 'closed'
if granted > 0 then status = 'open' end
if ARGV[21] == '1' then
  local wkey = P .. 'window:' .. customer
  local prev = redis.call('HGET', wkey, 'record')
  if prev and prev ~= app_id then release(prev) end
  local category, reason = ARGV[24], ARGV[25]
  if granted == 0 and kind == 'open' then category, reason = 'strategy', refusal end
  local valid_until = ''
  if granted > 0 then valid_until = ARGV[20] end
  redis.call('DEL', wkey)
  redis.call('HSET', wkey, 'status', status, 'limit', granted, 'apr', granted > 0 and ARGV[22] or '',
    'valid_until', valid_until, 'decision_id', ARGV[6], 'decision_seq', seq, 'policy_version', ARGV[23],
    'record', app_id, 'application_id', ARGV[31], 'segment', segment, 'category', granted > 0 and '' or category,
    'reason', granted > 0 and '' or reason)
  if granted > 0 then
    redis.call('ZADD', P .. 'expiry', ARGV[20], app_id)
    redis.call('SADD', P .. 'open', app_id)
  end
end
redis.call('HSET', app_key, 'seq', seq, 'granted', granted, 'refusal', refusal, 'part', part,
  'available', available, 'budget_bound', budget_bound, 'status', status, 'el_fen', el_fen, 'customer', customer,
  'segment', segment, 'programme', ARGV[8], 'decision_id', ARGV[6], 'region', ARGV[26], 'channel', ARGV[27],
  'locale', ARGV[28], 'partner', ARGV[29], 'model_id', ARGV[30], 'policy_version', ARGV[23],
  'application_id', ARGV[31], 'decided_at', ARGV[34])
if ARGV[32] ~= '' then
  -- closed for maintenance: keep the score to decide again when the maintenance ends
  redis.call('HSET', app_key, 'deferred_score', ARGV[32])
  redis.call('ZADD', P .. 'deferred', ARGV[33], app_id)
end
return {'new', tostring(seq), tostring(granted), refusal, tostring(part), tostring(available), '', '0', tostring(budget_bound), tostring(el_fen), ARGV[34]}
"""

# ARGV: 1 prefix, 2 application_id, 3 closure decision_id, 4 category, 5 reason, 6 trigger, 7 now ms
_CLOSE = _COMMON + r"""
local app_id = ARGV[2]
local k = P .. 'app:' .. app_id
local customer = redis.call('HGET', k, 'customer')
if not customer or redis.call('HGET', k, 'status') ~= 'open' then return {} end
release(app_id)
local seq = redis.call('INCR', P .. 'seq:' .. customer)
redis.call('HSET', k, 'status', 'closed', 'closure_id', ARGV[3], 'closure_seq', seq, 'closure_category', ARGV[4],
  'closure_reason', ARGV[5], 'closure_trigger', ARGV[6], 'closure_at', ARGV[7])
local wkey = P .. 'window:' .. customer
if redis.call('HGET', wkey, 'record') == app_id then
  redis.call('HSET', wkey, 'status', 'closed', 'limit', 0, 'apr', '', 'valid_until', '', 'decision_id', ARGV[3],
    'decision_seq', seq, 'category', ARGV[4], 'reason', ARGV[5])
end
redis.call('ZADD', P .. 'closing', seq, app_id)
return {tostring(seq)}
"""

# ARGV: 1 prefix, then per decision: application_id, event json (only kept if absent)
_REMEMBER = r"""
local P = ARGV[1]
for i = 2, #ARGV, 2 do
  redis.call('HSETNX', P .. 'app:' .. ARGV[i], 'event', ARGV[i + 1])
end
return 1
"""

_APP_FIELDS = (
    "application_id", "customer", "segment", "decision_id", "policy_version", "model_id", "locale", "partner", "closure_id",
    "closure_seq", "closure_category", "closure_reason", "closure_trigger", "closure_at", "region", "channel",
    "status", "granted",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class CurrentWindow:
    """A customer's current window as cached (the latest decision by sequence)."""

    customer_id: str
    status: str
    limit: int
    apr: float | None
    valid_until: datetime | None
    decision_id: str
    decision_seq: int
    policy_version: str
    application_id: str
    segment: str
    category: str | None
    reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class LifecycleClosure:
    """A window closed by expiry or a pause, to be announced as `WindowClosed`."""

    record: str  # the decision record key (see the module docstring)
    fields: dict[str, str]

    @property
    def seq(self) -> int:
        return int(self.fields["closure_seq"])


def _jsonable(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


class RedisLimits:
    """The policy's limit store on Redis (see module docstring for the keys)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._decide = redis.register_script(_DECIDE)
        self._close = redis.register_script(_CLOSE)
        self._remember = redis.register_script(_REMEMBER)

    # --- deciding ------------------------------------------------------------------------------

    async def allocate(self, proposals: Sequence[Proposal], policy: PolicyDocument) -> list[Allocation]:
        """Decide each proposal atomically (budget, sequence, superseding), in one round trip."""
        if not proposals:
            return []
        calls = [self._decide_args(proposal, policy) for proposal in proposals]
        try:
            answers = await self._evalsha_many(calls)
        except NoScriptError:  # Redis restarted empty (or was flushed): load the script once more
            await self.redis.script_load(_DECIDE)
            answers = await self._evalsha_many(calls)
        return [self._allocation(answer) for answer in answers]

    async def _evalsha_many(self, calls: Sequence[Sequence[str | int | float]]) -> list[Any]:
        # EVALSHA straight into the pipeline: registered scripts in a redis-py pipeline cost an
        # extra SCRIPT EXISTS round trip on every execute.
        pipe = self.redis.pipeline(transaction=False)
        for args in calls:
            pipe.evalsha(self._decide.sha, 0, *args)
        return await pipe.execute()

    def _decide_args(self, proposal: Proposal, policy: PolicyDocument) -> list[str | int | float]:
        score = proposal.score
        facts = score.facts
        segment = facts.segment if facts else "unknown"
        verdict = proposal.verdict
        budget = policy.budgets.get(segment)  # type: ignore[call-overload]
        programme = policy.programme_for(segment) if facts else None
        offer = verdict if isinstance(verdict, Offer) else None
        defer = isinstance(verdict, Close) and verdict.reason == "maintenance" and verdict.retry_after is not None
        return [
            self.prefix,
            proposal.record_key,
            score.customer_id,
            segment,
            "open" if offer else "close",
            str(proposal.decision_id),
            offer.limit if offer else 0,
            programme.name if (offer and programme) else "",
            offer.programme_part if offer else 0,
            programme.budget if programme else 0,
            repr(offer.el_rate) if offer else "0",
            repr(offer.margin) if offer else "0",
            budget.exposure if budget else 0,
            budget.expected_loss if budget else 0,
            "1" if policy.pacing.enabled else "0",
            repr(policy.pacing.max_margin),
            repr(policy.pacing.steepness),
            policy.limits.round_to,
            policy.limits.min_limit,
            int(offer.valid_until.timestamp() * 1000) if offer else 0,
            "1" if proposal.supersedes else "0",
            repr(offer.apr) if offer else "",
            proposal.policy_label,
            "" if offer else verdict.category,  # type: ignore[union-attr]
            "" if offer else verdict.reason,  # type: ignore[union-attr]
            facts.region if facts else "",
            facts.channel if facts else "",
            facts.locale if facts else "zh-CN",
            (facts.partner_id or "") if facts else "",
            score.model_id or "",
            score.application_id,
            score.model_dump_json() if defer else "",
            int(verdict.retry_after.timestamp() * 1000) if defer else 0,  # type: ignore[union-attr]
            int(proposal.decided_at.timestamp() * 1000),
        ]

    @staticmethod
    def _allocation(answer: Sequence[bytes | str]) -> Allocation:
        values = [text(v) for v in answer]
        return Allocation(
            fresh=values[0] == "new",
            seq=int(values[1]),
            granted=int(float(values[2] or 0)),
            refusal=values[3] or None,
            programme_part=int(float(values[4] or 0)),
            available=int(float(values[5] or 0)),
            stored_event=values[6].encode() if values[6] else None,
            published=values[7] == "1",
            budget_bound=values[8] == "1",
            expected_loss_fen=int(float(values[9] or 0)),
            decided_at_ms=int(values[10] or 0),
        )

    async def remember(self, decisions: Sequence[tuple[str, bytes]]) -> None:
        """Keep each decision's event (by application) so a redelivery republishes the same bytes."""
        if decisions:
            args: list[str | bytes] = [self.prefix]
            for application_id, payload in decisions:
                args += [application_id, payload]
            await self._remember(keys=[], args=args)

    async def mark_published(self, application_ids: Sequence[str]) -> None:
        if application_ids:
            pipe = self.redis.pipeline(transaction=False)
            for application_id in application_ids:
                pipe.hset(f"{self.prefix}app:{application_id}", "published", "1")
            await pipe.execute()

    # --- lifecycle -----------------------------------------------------------------------------

    async def due_expiries(self, now: datetime, limit: int = 200) -> list[str]:
        members = await self.redis.zrangebyscore(
            f"{self.prefix}expiry", "-inf", int(now.timestamp() * 1000), start=0, num=limit
        )
        return [text(m) for m in members]

    async def open_applications(self) -> list[str]:
        return sorted(text(m) for m in await self.redis.smembers(f"{self.prefix}open"))

    async def application(self, application_id: str) -> dict[str, str]:
        values = await self.redis.hmget(f"{self.prefix}app:{application_id}", _APP_FIELDS)
        return {k: text(v) for k, v in zip(_APP_FIELDS, values, strict=True) if v is not None}

    async def close(self, application_id: str, *, closure_id: str, category: str, reason: str, trigger: str, now: datetime) -> LifecycleClosure | None:
        """Close an open window (expiry, pause): release its budget. None if it was not open."""
        answer = await self._close(
            keys=[],
            args=[self.prefix, application_id, closure_id, category, reason, trigger, int(now.timestamp() * 1000)],
        )
        if not answer:
            return None
        return LifecycleClosure(application_id, await self.application(application_id))  # by record key

    async def due_deferred(self, now: datetime, limit: int = 200) -> list[tuple[str, bytes]]:
        """Records closed for maintenance whose time to be decided again has come, with their scores."""
        keys = [
            text(m)
            for m in await self.redis.zrangebyscore(
                f"{self.prefix}deferred", "-inf", int(now.timestamp() * 1000), start=0, num=limit
            )
        ]
        out = []
        for key in keys:
            score = await self.redis.hget(f"{self.prefix}app:{key}", "deferred_score")
            if score:
                out.append((key, score if isinstance(score, bytes) else score.encode()))
            else:
                await self.redis.zrem(f"{self.prefix}deferred", key)
        return out

    async def redecided(self, record_keys: Sequence[str]) -> None:
        if record_keys:
            await self.redis.zrem(f"{self.prefix}deferred", *record_keys)

    async def pending_closures(self, limit: int = 200) -> list[LifecycleClosure]:
        members = await self.redis.zrange(f"{self.prefix}closing", 0, limit - 1)
        closures = []
        for member in members:
            application_id = text(member)
            closures.append(LifecycleClosure(application_id, await self.application(application_id)))
        return closures

    async def closure_published(self, application_ids: Sequence[str]) -> None:
        if application_ids:
            await self.redis.zrem(f"{self.prefix}closing", *application_ids)

    # --- reading -------------------------------------------------------------------------------

    async def current(self, customer_id: str) -> CurrentWindow | None:
        raw = await self.redis.hgetall(f"{self.prefix}window:{customer_id}")
        if not raw:
            return None
        w = {text(k): text(v) for k, v in raw.items()}
        valid_until = datetime.fromtimestamp(int(w["valid_until"]) / 1000, UTC) if w.get("valid_until") else None
        return CurrentWindow(
            customer_id=customer_id,
            status=w.get("status", ""),
            limit=int(float(w.get("limit") or 0)),
            apr=float(w["apr"]) if w.get("apr") else None,
            valid_until=valid_until,
            decision_id=w.get("decision_id", ""),
            decision_seq=int(w.get("decision_seq") or 0),
            policy_version=w.get("policy_version", ""),
            application_id=w.get("application_id", ""),
            segment=w.get("segment", ""),
            category=w.get("category") or None,
            reason=w.get("reason") or None,
        )

    async def budgets(self, segments: Sequence[str] = SEGMENTS) -> dict[str, dict[str, float]]:
        """Reserved per segment: exposure and expected loss, CNY (one round trip, no key scan)."""
        pipe = self.redis.pipeline(transaction=False)
        for segment in segments:
            pipe.hmget(f"{self.prefix}budget:{segment}", ["exposure", "el_fen"])
        result = {}
        for segment, (exposure, el_fen) in zip(segments, await pipe.execute(), strict=True):
            if exposure is not None or el_fen is not None:
                result[segment] = {"exposure": float(text(exposure) or 0), "expected_loss": int(text(el_fen) or 0) / 100}
        return result

    async def programmes(self, names: Sequence[str]) -> dict[str, int]:
        """Boosted parts reserved per programme."""
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hget(f"{self.prefix}programme:{name}", "reserved")
        return {name: int(float(text(v) or 0)) for name, v in zip(names, await pipe.execute(), strict=True) if v is not None}
