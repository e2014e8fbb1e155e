"""The portfolio book on Redis: the fleet's one shared book, kept atomically across policy replicas.

Every change is a Lua script, the atomic twin of `book.py` (same rules, same order, same money);
`tests/e2e/test_book_twins.py` holds the two equal on random streams. A script takes one structured
argument (a JSON request, decoded with cjson) and returns a structured reply. Only this module
knows the key layout; everything else reads and writes the book through it. Keys, under a prefix
(``cw:`` or ``cw:<namespace>:``):

    budget:<segment>     hash  exposure (CNY), el_fen (expected loss, fen)
    programme:<name>     hash  reserved (CNY of boosted parts)
    app:<record>         hash  a decision record (see `ports.DecisionRecord`); record = application id,
                               or application id + '~r' for a re-decision
    seq:<customer>       int   the customer's decision sequence (monotonic)
    window:<customer>    hash  the customer's current window (see `ports.WindowEntry`)
    expiry               zset  open records by valid_until (ms)
    open                 set   open records
    closing              zset  lifecycle closures decided but not yet announced, by sequence
    deferred             zset  records closed for maintenance, by when to decide them again (ms)

Single-node Redis (the scripts touch several keys; on a Redis Cluster they would need hash tags).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

import orjson
from redis.asyncio import Redis

from services.policy.ports import (
    Allocation,
    BookState,
    CloseRequest,
    CurrentWindow,
    DecideRequest,
    DecisionRecord,
    LifecycleClosure,
    Reserved,
    WindowEntry,
)
from shared.contracts import SEGMENTS
from shared.redis_connection import text
from shared.redis_state import StateGuard, guard_lua

__all__ = ["RedisBook"]

# Every script starts with the state guard (see shared/redis_state.py): it refuses a book that is
# fenced for a rebuild, of another generation, or behind a version this process saw.
_LEDGER = guard_lua("book") + r"""
local function rdown(x, step) return math.floor(x / step + 1e-9) * step end
-- 0 - x, not -x: Lua's -0 prints as "-0", which HINCRBY refuses
local function signed(x, sign) if sign < 0 then return 0 - x end return x end
local function keep_for(key, retention)
  if retention > 0 then redis.call('PEXPIRE', key, retention) end
end
local function reserve(segment, exposure, el_fen, programme, part, sign)
  local bkey = P .. 'budget:' .. segment
  redis.call('HINCRBY', bkey, 'exposure', signed(exposure, sign))
  redis.call('HINCRBY', bkey, 'el_fen', signed(el_fen, sign))
  if programme ~= '' and part > 0 then
    redis.call('HINCRBY', P .. 'programme:' .. programme, 'reserved', signed(part, sign))
  end
end
local function release(record, retention)
  local k = P .. 'app:' .. record
  local a = redis.call('HMGET', k, 'status', 'granted', 'el_fen', 'segment', 'programme', 'part')
  if a[1] ~= 'open' then return 0 end
  reserve(a[4], tonumber(a[2]), tonumber(a[3] or '0'), a[5] or '', tonumber(a[6] or '0'), -1)
  redis.call('HSET', k, 'status', 'released')
  keep_for(k, retention)
  redis.call('ZREM', P .. 'expiry', record)
  redis.call('SREM', P .. 'open', record)
  return tonumber(a[2])
end
"""

# ARGV 2: {retention_ms, requests: [DecideRequest, ...]}. Reply: {version, answers: [...]}, answers in order.
_DECIDE = _LEDGER + r"""
local function existing(key, customer)
  local s = redis.call('HMGET', key, 'seq', 'granted', 'refusal', 'part', 'available', 'event', 'published',
    'budget_bound', 'el_fen', 'decided_at', 'customer')
  if not s[1] then return nil end
  if s[11] ~= customer then return {conflict = 1} end
  return {fresh = 0, seq = tonumber(s[1]), granted = tonumber(s[2] or '0'), refusal = s[3] or '',
    part = tonumber(s[4] or '0'), available = tonumber(s[5] or '0'), event = s[6] or '',
    published = s[7] == '1' and 1 or 0, budget_bound = tonumber(s[8] or '0'), el_fen = tonumber(s[9] or '0'),
    decided_at = tonumber(s[10] or '0')}
end
local function decide(r)
  local key = P .. 'app:' .. r.record
  local seen = existing(key, r.customer)
  if not seen and r.fallback_of ~= '' then
    local owner = redis.call('HGET', P .. 'app:' .. r.fallback_of, 'customer')
    if owner then
      -- the application was read and decided after all: its decision stands
      if owner ~= r.customer then return {conflict = 1} end
      return {as_read = 1}
    end
  end
  if seen then return seen end
  local seq = redis.call('INCR', P .. 'seq:' .. r.customer)
  local origin = seq
  if r.redecides ~= '' then
    origin = tonumber(redis.call('HGET', P .. 'app:' .. r.redecides, 'seq') or tostring(seq))
  end
  local wkey = P .. 'window:' .. r.customer
  local current = redis.call('HGET', wkey, 'origin_seq')
  local outdated = r.supersedes and current and tonumber(current) > origin
  local granted, refusal, part, available, bound, el_fen, programme = 0, '', 0, 0, 0, 0, ''
  local o = r.offer
  if o == cjson.null then o = nil end  -- JSON null decodes to a (truthy) userdata
  if o then programme = o.programme end
  if o and outdated then
    refusal = 'newer_application'
  elseif o then
    local b = r.budget
    local h = redis.call('HMGET', P .. 'budget:' .. r.segment, 'exposure', 'el_fen')
    local res_exp, res_el_fen = tonumber(h[1] or '0'), tonumber(h[2] or '0')
    local room_exp = math.max(0, b.exposure - res_exp)
    local room_loss = room_exp
    if o.el_rate > 0 then room_loss = math.max(0, b.expected_loss - res_el_fen / 100) / o.el_rate end
    available = rdown(math.min(room_exp, room_loss), b.round_to)
    local u_exp, u_el = 1, 1
    if b.exposure > 0 then u_exp = res_exp / b.exposure end
    if b.expected_loss > 0 then u_el = (res_el_fen / 100) / b.expected_loss end
    local u = math.min(1, math.max(u_exp, u_el, 0))
    local required = 0
    if b.pacing then required = b.max_margin * (u ^ b.steepness) end
    if o.margin < required then
      refusal = 'budget_paced'
    else
      local limit = o.limit
      part = o.part
      if part > 0 and programme ~= '' then
        local taken = tonumber(redis.call('HGET', P .. 'programme:' .. programme, 'reserved') or '0')
        local room = math.max(0, b.programme_budget - taken)
        if part > room then limit = limit - (part - room); part = room end
      end
      limit = rdown(math.min(limit, available), b.round_to)
      if limit < b.min_limit then
        refusal = 'budget_exhausted'; part = 0
      else
        granted = limit
        part = math.min(part, limit)
        if limit < o.limit and limit == available then bound = 1 end
        el_fen = math.floor(granted * o.el_rate * 100 + 0.5)
        reserve(r.segment, granted, el_fen, programme, part, 1)
      end
    end
  end
  local status = 'closed'
  if granted > 0 then status = 'open' end
  if r.supersedes and not outdated then
    local prev = redis.call('HGET', wkey, 'record')
    if prev and prev ~= r.record then release(prev, r.retention_ms) end
    local category, reason, apr, valid_until = r.category, r.reason, '', ''
    if granted > 0 then
      category, reason, apr, valid_until = '', '', o.apr, o.valid_until_ms
    elseif o then
      category, reason = 'strategy', refusal
    end
    redis.call('DEL', wkey)
    redis.call('HSET', wkey, 'status', status, 'limit', granted, 'apr', apr, 'valid_until', valid_until,
      'decision_id', r.decision_id, 'decision_seq', seq, 'policy_version', r.policy_version, 'record', r.record,
      'application_id', r.application_id, 'segment', r.segment, 'category', category, 'reason', reason,
      'origin_seq', origin)
    if granted > 0 then
      redis.call('ZADD', P .. 'expiry', o.valid_until_ms, r.record)
      redis.call('SADD', P .. 'open', r.record)
    else
      keep_for(wkey, r.retention_ms)
    end
  end
  redis.call('HSET', key, 'seq', seq, 'granted', granted, 'refusal', refusal, 'part', part, 'available', available,
    'budget_bound', bound, 'status', status, 'el_fen', el_fen, 'customer', r.customer, 'segment', r.segment,
    'programme', programme, 'decision_id', r.decision_id, 'region', r.region, 'channel', r.channel,
    'locale', r.locale, 'partner', r.partner, 'model_id', r.model_id, 'policy_version', r.policy_version,
    'application_id', r.application_id, 'decided_at', r.decided_at_ms)
  if r.deferred_score ~= '' then
    -- closed for maintenance: keep the score to decide again when the maintenance ends
    redis.call('HSET', key, 'deferred_score', r.deferred_score)
    redis.call('ZADD', P .. 'deferred', r.deferred_until_ms, r.record)
  elseif granted == 0 then
    keep_for(key, r.retention_ms)
  end
  return {fresh = 1, seq = seq, granted = granted, refusal = refusal, part = part, available = available,
    event = '', published = 0, budget_bound = bound, el_fen = el_fen, decided_at = r.decided_at_ms}
end
local batch = cjson.decode(ARGV[2])
local answers = {}
for i, r in ipairs(batch.requests) do
  r.retention_ms = batch.retention_ms
  answers[i] = decide(r)
end
return cjson.encode({version = version, answers = answers})
"""

# ARGV 2: a JSON CloseRequest plus retention_ms. Reply: {version, seq} (seq 0 when the window was not open).
_CLOSE = _LEDGER + r"""
local r = cjson.decode(ARGV[2])
local k = P .. 'app:' .. r.record
local customer = redis.call('HGET', k, 'customer')
if not customer or redis.call('HGET', k, 'status') ~= 'open' then return cjson.encode({version = version, seq = 0}) end
release(r.record, 0)
local seq = redis.call('INCR', P .. 'seq:' .. customer)
redis.call('HSET', k, 'status', 'closed', 'closure_id', r.closure_id, 'closure_seq', seq,
  'closure_category', r.category, 'closure_reason', r.reason, 'closure_trigger', r.trigger, 'closure_at', r.at_ms)
keep_for(k, r.retention_ms)
local wkey = P .. 'window:' .. customer
if redis.call('HGET', wkey, 'record') == r.record then
  redis.call('HSET', wkey, 'status', 'closed', 'limit', 0, 'apr', '', 'valid_until', '', 'decision_id', r.closure_id,
    'decision_seq', seq, 'category', r.category, 'reason', r.reason)
  keep_for(wkey, r.retention_ms)
end
redis.call('ZADD', P .. 'closing', seq, r.record)
return cjson.encode({version = version, seq = seq})
"""

# ARGV 2: a JSON array of [command, key suffix, args...]: small writes (remember, published, ...),
# applied only to the book this process holds. Reply: the version.
_WRITE = _LEDGER + r"""
for _, op in ipairs(cjson.decode(ARGV[2])) do
  local args = {}
  for i = 3, #op do args[#args + 1] = op[i] end
  redis.call(op[1], P .. op[2], unpack(args))
end
return version
"""

_RECORD_FIELDS = {f.name for f in fields(DecisionRecord)}
_INT_FIELDS = {f.name for f in fields(DecisionRecord) if f.type in ("int", int)}


def _record(raw: Mapping[bytes | str, bytes | str]) -> DecisionRecord | None:
    if not raw:
        return None
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = text(key)
        if name == "event":
            values[name] = value if isinstance(value, bytes) else str(value).encode()
        elif name in ("published", "budget_bound"):
            values[name] = text(value) == "1"
        elif name in _INT_FIELDS:
            values[name] = int(float(text(value) or 0))
        elif name in _RECORD_FIELDS:
            values[name] = text(value)
    return DecisionRecord(**values)


def _window(raw: Mapping[bytes | str, bytes | str]) -> WindowEntry | None:
    if not raw:
        return None
    w = {text(k): text(v) for k, v in raw.items()}
    return WindowEntry(
        status=w.get("status", ""),
        limit=int(float(w.get("limit") or 0)),
        apr=w.get("apr", ""),
        valid_until=int(float(w["valid_until"])) if w.get("valid_until") else None,
        decision_id=w.get("decision_id", ""),
        decision_seq=int(w.get("decision_seq") or 0),
        policy_version=w.get("policy_version", ""),
        record=w.get("record", ""),
        application_id=w.get("application_id", ""),
        segment=w.get("segment", ""),
        category=w.get("category", ""),
        reason=w.get("reason", ""),
        origin_seq=int(w.get("origin_seq") or 0),
    )


def _record_fields(entry: DecisionRecord) -> dict[str, str | bytes]:
    out: dict[str, str | bytes] = {}
    for name, value in asdict(entry).items():
        if value is None or (name not in ("seq", "granted", "status") and value in ("", 0, False)):
            continue  # absent in Redis reads back as the default
        out[name] = value if isinstance(value, bytes) else ("1" if value is True else str(value))
    return out


def _window_fields(entry: WindowEntry) -> dict[str, str]:
    return {k: "" if v is None else str(v) for k, v in asdict(entry).items()}


# The families a rebuild replaces.
FAMILIES = ("window:", "budget:", "programme:", "seq:", "app:", "expiry", "open", "closing", "deferred")


class RedisBook:
    """`LimitStore` (and `LiveBook`) on Redis; see the module docstring for the keys.

    `guard` guards the book (its generation, fence and version: `shared/redis_state.py`): every
    script refuses a book that is not the one this process works on, with `StateLost`.
    """

    def __init__(self, redis: Redis, prefix: str, *, retention_ms: int = 0) -> None:
        self.redis = redis
        self.prefix = prefix
        self.retention_ms = retention_ms
        self.guard = StateGuard(redis, prefix, "book")
        self._decide = redis.register_script(_DECIDE)
        self._close = redis.register_script(_CLOSE)
        self._write = redis.register_script(_WRITE)

    def _key(self, family: str, name: str = "") -> str:
        return f"{self.prefix}{family}{name}"

    async def install(self, state: BookState, generation: str, *, now_ms: int) -> None:
        """Replace the whole book with `state` and mark it complete as `generation` (under the fence).

        Closed and superseded records, and closed windows, whose retention has passed are left out;
        the others keep what is left of it. The generation is written last: a rebuild that dies half
        way leaves no generation, so the next one starts again.
        """
        await self.guard.retire()
        for family in FAMILIES:
            pattern = self._key(family) + ("*" if family.endswith(":") else "")
            doomed = [key async for key in self.redis.scan_iter(match=pattern, count=1000)]
            for i in range(0, len(doomed), 500):
                await self.redis.delete(*doomed[i : i + 500])
        pipe = self.redis.pipeline(transaction=False)
        for customer, window in state.windows.items():
            key = self._key("window:", customer)
            behind = state.records.get(window.record)
            since = max(behind.closure_at, behind.decided_at) if behind is not None else now_ms
            left = self._left(window.status == "open", since, now_ms)
            if left == 0:
                continue
            pipe.hset(key, mapping=_window_fields(window))  # type: ignore[arg-type]
            if left > 0:
                pipe.pexpire(key, left)
        for segment, reserved in state.budgets.items():
            pipe.hset(self._key("budget:", segment), mapping={"exposure": reserved.exposure, "el_fen": reserved.el_fen})
        for name, reserved_part in state.programmes.items():
            pipe.hset(self._key("programme:", name), "reserved", reserved_part)
        for customer, seq in state.seqs.items():
            pipe.set(self._key("seq:", customer), seq)
        for record, entry in state.records.items():
            held = entry.status == "open" or bool(entry.deferred_score) or record in state.closing
            left = self._left(held, max(entry.closure_at, entry.decided_at), now_ms)
            if left == 0:
                continue
            pipe.hset(self._key("app:", record), mapping=_record_fields(entry))  # type: ignore[arg-type]
            if left > 0:
                pipe.pexpire(self._key("app:", record), left)
        for family, values in (("expiry", state.expiry), ("closing", state.closing), ("deferred", state.deferred)):
            if values:
                pipe.zadd(self._key(family), values)  # type: ignore[arg-type]
        if state.open:
            pipe.sadd(self._key("open"), *state.open)
        self.guard.mark_complete(pipe, generation)
        await pipe.execute()

    async def usable(self) -> bool:
        return await self.guard.verify()

    def _left(self, held: bool, since_ms: int, now_ms: int) -> int:
        """Milliseconds a key has left: -1 forever (held or no retention), 0 gone already."""
        if held or self.retention_ms <= 0 or not since_ms:
            return -1
        return max(0, since_ms + self.retention_ms - now_ms)

    # --- deciding ------------------------------------------------------------------------------------

    async def allocate(self, requests: Sequence[DecideRequest]) -> list[Allocation]:
        """Decide the batch in one atomic script call, in order."""
        if not requests:
            return []
        # orjson writes the request dataclasses itself (fast); the script reads a null offer as none.
        body = orjson.dumps({"retention_ms": self.retention_ms, "requests": requests})
        reply = orjson.loads(await self.guard.run(self._decide, body))
        self.guard.seen(reply["version"])
        return [
            Allocation(
                fresh=False, seq=0, granted=0, refusal=None, programme_part=0, available=0,
                conflict="conflict" in a, decided_as_read="as_read" in a,
            )  # fmt: skip
            if "conflict" in a or "as_read" in a
            else Allocation(
                fresh=a["fresh"] == 1,
                seq=int(a["seq"]),
                granted=int(a["granted"]),
                refusal=a["refusal"] or None,
                programme_part=int(a["part"]),
                available=int(a["available"]),
                budget_bound=a["budget_bound"] == 1,
                expected_loss_fen=int(a["el_fen"]),
                decided_at_ms=int(a["decided_at"]),
                stored_event=a["event"].encode() if a["event"] else None,
                published=a["published"] == 1,
            )
            for a in reply["answers"]
        ]

    async def _ops(self, ops: list[list[Any]]) -> None:
        if ops:
            self.guard.seen(await self.guard.run(self._write, orjson.dumps(ops)))

    async def remember(self, decisions: Sequence[tuple[str, bytes]]) -> None:
        await self._ops([["HSETNX", f"app:{r}", "event", payload.decode()] for r, payload in decisions])

    async def mark_published(self, records: Sequence[str]) -> None:
        # Published: a redelivery has nothing to publish again, so the kept event can go (memory).
        await self._ops([op for r in records for op in (["HSET", f"app:{r}", "published", "1"], ["HDEL", f"app:{r}", "event"])])

    async def _pipeline(self, fill: Callable[[Any], object]) -> list[Any]:
        pipe = self.redis.pipeline(transaction=False)
        fill(pipe)
        return await pipe.execute()

    # --- lifecycle -----------------------------------------------------------------------------------

    async def due_expiries(self, now: datetime, limit: int = 200) -> list[str]:
        found = await self.redis.zrangebyscore(self._key("expiry"), "-inf", int(now.timestamp() * 1000), start=0, num=limit)
        return [text(m) for m in found]

    async def open_records(self) -> list[str]:
        return sorted(text(m) for m in await self.redis.smembers(self._key("open")))

    async def record(self, record: str) -> DecisionRecord | None:
        return _record(await self.redis.hgetall(self._key("app:", record)))

    async def close(self, request: CloseRequest) -> LifecycleClosure | None:
        reply = orjson.loads(await self.guard.run(self._close, orjson.dumps({**asdict(request), "retention_ms": self.retention_ms})))
        self.guard.seen(reply["version"])
        if not reply["seq"]:
            return None
        facts = await self.record(request.record)
        return LifecycleClosure(request.record, facts) if facts else None

    async def pending_closures(self, limit: int = 200) -> list[LifecycleClosure]:
        records = [text(m) for m in await self.redis.zrange(self._key("closing"), 0, limit - 1)]
        if not records:
            return []
        raws = await self._pipeline(lambda pipe: [pipe.hgetall(self._key("app:", r)) for r in records])
        return [LifecycleClosure(r, facts) for r, raw in zip(records, raws, strict=True) if (facts := _record(raw))]

    async def closure_published(self, records: Sequence[str]) -> None:
        await self._ops([["ZREM", "closing", *records]] if records else [])

    async def due_deferred(self, now: datetime, limit: int = 200) -> list[tuple[str, bytes]]:
        due = await self.redis.zrangebyscore(self._key("deferred"), "-inf", int(now.timestamp() * 1000), start=0, num=limit)
        out = []
        for record in (text(m) for m in due):
            score = await self.redis.hget(self._key("app:", record), "deferred_score")
            if score:
                out.append((record, score if isinstance(score, bytes) else str(score).encode()))
            else:
                await self._ops([["ZREM", "deferred", record]])
        return out

    async def redecided(self, records: Sequence[str]) -> None:
        await self._ops([["ZREM", "deferred", *records]] if records else [])

    # --- reading -------------------------------------------------------------------------------------

    async def current(self, customer_id: str) -> CurrentWindow | None:
        entry = _window(await self.redis.hgetall(self._key("window:", customer_id)))
        return CurrentWindow.of(customer_id, entry) if entry else None

    async def budgets(self) -> dict[str, Reserved]:
        """Reserved per segment (one round trip, no key scan); segments never reserved are absent."""
        answers = await self._pipeline(lambda pipe: [pipe.hmget(self._key("budget:", s), ["exposure", "el_fen"]) for s in SEGMENTS])
        return {
            segment: Reserved(int(text(exposure) or 0), int(text(el_fen) or 0))
            for segment, (exposure, el_fen) in zip(SEGMENTS, answers, strict=True)
            if exposure is not None or el_fen is not None
        }

    async def programmes(self, names: Sequence[str]) -> dict[str, int]:
        """Boosted parts reserved per programme."""
        answers = await self._pipeline(lambda pipe: [pipe.hget(self._key("programme:", n), "reserved") for n in names])
        return {name: int(text(v) or 0) for name, v in zip(names, answers, strict=True) if v is not None}

    async def open_window(self, customer_id: str) -> DecisionRecord | None:
        record = await self.redis.hget(self._key("window:", customer_id), "record")
        if not record:
            return None
        entry = await self.record(text(record))
        return entry if entry is not None and entry.status == "open" else None

    async def open_record(self, customer_id: str) -> str | None:
        """The record of the customer's current window if it is open (issue 15: a suspension closes it)."""
        status, record = await self.redis.hmget(self._key("window:", customer_id), ["status", "record"])
        return text(record) if record and text(status) == "open" else None

    # --- the whole book: for a rebuild, its check, and the twins test ---------------------------------

    async def snapshot(self) -> BookState:
        """Every value the book holds under this prefix."""
        state = BookState()

        async def scan(family: str) -> list[str]:
            return [text(k) async for k in self.redis.scan_iter(match=self._key(family) + "*", count=1000)]

        for key in await scan("window:"):
            if (entry := _window(await self.redis.hgetall(key))) is not None:
                state.windows[key.removeprefix(self._key("window:"))] = entry
        for key in await scan("budget:"):
            raw = {text(k): text(v) for k, v in (await self.redis.hgetall(key)).items()}
            state.budgets[key.removeprefix(self._key("budget:"))] = Reserved(int(raw.get("exposure") or 0), int(raw.get("el_fen") or 0))
        for key in await scan("programme:"):
            state.programmes[key.removeprefix(self._key("programme:"))] = int(text(await self.redis.hget(key, "reserved")) or 0)
        for key in await scan("seq:"):
            state.seqs[key.removeprefix(self._key("seq:"))] = int(text(await self.redis.get(key)) or 0)
        for key in await scan("app:"):
            if (record := _record(await self.redis.hgetall(key))) is not None:
                state.records[key.removeprefix(self._key("app:"))] = record
        for family, target in (("expiry", state.expiry), ("closing", state.closing), ("deferred", state.deferred)):
            for member, score in await self.redis.zrange(self._key(family), 0, -1, withscores=True):
                target[text(member)] = int(score)
        state.open = {text(m) for m in await self.redis.smembers(self._key("open"))}
        return state
