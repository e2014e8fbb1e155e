"""The portfolio book on Redis: the fleet's one shared book, kept atomically across policy replicas.

Every change is a Lua script, the atomic twin of `book.py` (same rules, same order, same money);
`tests/e2e/test_book_twins.py` holds the two equal on random streams. A script takes one structured
argument (a JSON request, decoded with cjson) and returns a structured reply. Only this module
knows the key layout; everything else reads and writes the book through it. Keys, under a prefix
(``cw:`` or ``cw:<namespace>:``):

    budget:<key>         hash  exposure (CNY), el_fen (expected loss, fen); key = segment, or
                               segment/period ("individual/2026-11") for a budget with a period
    programme:<name>     hash  reserved (CNY of boosted parts)
    app:<record>         hash  a decision record (see `ports.DecisionRecord`); record = application id,
                               or application id + '~r' for a re-decision
    seq:<customer>       int   the customer's decision sequence (monotonic)
    window:<customer>    hash  the customer's current window (see `ports.WindowEntry`)
    expiry               zset  open records by valid_until (ms)
    open                 set   open records
    closing              zset  lifecycle closures decided but not yet announced, by sequence
    deferred             zset  records closed for maintenance, by when to decide them again (ms)
    bal:<customer>       hash  balance (CNY owed: the principal rounded up), seq (raised by every approved
                               drawdown and repayment), principal_fen, credit_fen (an overpayment, kept)
    mv:<id>              hash  a drawdown's or repayment's answer (see `ports.Movement`), by its id
    loan:<id>            str   a loan (JSON, see `model.Loan`): its terms, schedule and what is paid; id =
                               the drawdown's
    loans:<customer>     list  the customer's loans not yet settled, in the order booked
    lwatch               zset  loans by when their next due-date step comes (ms)
    own:<customer>       list  the customer's cured overdues (JSON `model.Episode`): their own record
    lnote:<id>           str   a due-date step recorded, not yet published (JSON `model.LoanNotice`)
    lnotes               zset  those steps, by the order recorded
    lnote_seq            int   the last step's order

Single-node Redis (the scripts touch several keys; on a Redis Cluster they would need hash tags).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

import orjson
from redis.asyncio import Redis

from services.policy.windows.book import Book
from services.policy.windows.model import (
    Allocation,
    Balance,
    BookState,
    BudgetTerms,
    CloseRequest,
    CurrentWindow,
    DecisionRecord,
    DrawRequest,
    Episode,
    InstalmentState,
    LifecycleClosure,
    Loan,
    LoanNotice,
    Movement,
    Posting,
    RepayRequest,
    Reserved,
    Watched,
    WatchRequest,
    WindowEntry,
    WindowRequest,
)
from shared.contracts import OwnRecord
from shared.redis_connection import text
from shared.redis_state import Durability, StateGuard, guard_lua

__all__ = ["RedisBook"]

# Every script starts with the state guard (see shared/redis_state.py): it refuses a book that is
# fenced for a rebuild, of another generation, or behind a version this process saw.
_LEDGER = (
    guard_lua("book")
    + r"""
local function rdown(x, step) return math.floor(x / step + 1e-9) * step end
-- 0 - x, not -x: Lua's -0 prints as "-0", which HINCRBY refuses
local function signed(x, sign) if sign < 0 then return 0 - x end return x end
local function keep_for(key, retention)
  if retention > 0 then redis.call('PEXPIRE', key, retention) end
end
local function reserve(budget, exposure, el_fen, programme, part, sign)
  local bkey = P .. 'budget:' .. budget
  redis.call('HINCRBY', bkey, 'exposure', signed(exposure, sign))
  redis.call('HINCRBY', bkey, 'el_fen', signed(el_fen, sign))
  if programme ~= '' and part > 0 then
    redis.call('HINCRBY', P .. 'programme:' .. programme, 'reserved', signed(part, sign))
  end
end
local function release(record, retention)
  local k = P .. 'app:' .. record
  local a = redis.call('HMGET', k, 'status', 'granted', 'el_fen', 'segment', 'programme', 'part', 'budget')
  if a[1] ~= 'open' then return 0 end
  local budget = a[7]
  if not budget or budget == '' then budget = a[4] end
  reserve(budget, tonumber(a[2]), tonumber(a[3] or '0'), a[5] or '', tonumber(a[6] or '0'), -1)
  redis.call('HSET', k, 'status', 'released')
  keep_for(k, retention)
  redis.call('ZREM', P .. 'expiry', record)
  redis.call('SREM', P .. 'open', record)
  return tonumber(a[2])
end
"""
)

# ARGV 2: {retention_ms, budgets: {key: BudgetTerms}, requests: [WindowRequest, ...]}.
# Reply: {version, answers: [...]}, answers in order.
_POST = (
    _LEDGER
    + r"""
local budgets = {}
local NO_BUDGET = {exposure = 0, expected_loss = 0, programme_budget = 0, round_to = 100, min_limit = 500,
  pacing = false, elapsed = 0, slack = 0, demand = {}}
-- pacing against the demand still to come in the period (book.required_margin)
local function required_margin(b, res_exp, res_el_fen)
  if not b.pacing or #b.demand == 0 then return -math.huge end
  local to_come = 1.0 - b.elapsed
  local room_exp = math.max(0, b.exposure - res_exp) * (1.0 + b.slack)
  local room_loss = math.max(0.0, b.expected_loss - res_el_fen / 100) * (1.0 + b.slack)
  for i, d in ipairs(b.demand) do
    if d[2] * to_come <= room_exp and d[3] * to_come <= room_loss then
      if i == 1 then return -math.huge end
      return d[1]
    end
  end
  return b.demand[#b.demand][1]
end
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
local function post(r)
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
    local b = budgets[r.budget] or NO_BUDGET
    local h = redis.call('HMGET', P .. 'budget:' .. r.budget, 'exposure', 'el_fen')
    local res_exp, res_el_fen = tonumber(h[1] or '0'), tonumber(h[2] or '0')
    local room_exp = math.max(0, b.exposure - res_exp)
    local room_loss = room_exp
    if o.el_rate > 0 then room_loss = math.max(0, b.expected_loss - res_el_fen / 100) / o.el_rate end
    available = rdown(math.min(room_exp, room_loss), b.round_to)
    if o.margin < required_margin(b, res_exp, res_el_fen) then
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
        reserve(r.budget, granted, el_fen, programme, part, 1)
      end
    end
  end
  local status = 'closed'
  if granted > 0 then status = 'open' end
  if r.supersedes and not outdated then
    local prev = redis.call('HGET', wkey, 'record')
    if prev and prev ~= r.record then release(prev, r.retention_ms) end
    local category, reason, apr, valid_until, income_fraction = r.category, r.reason, '', '', ''
    if granted > 0 then
      category, reason, apr, valid_until, income_fraction = '', '', o.apr, o.valid_until_ms, o.income_fraction
    elseif o then
      category, reason = 'strategy', refusal
    end
    redis.call('DEL', wkey)
    redis.call('HSET', wkey, 'status', status, 'limit', granted, 'apr', apr, 'valid_until', valid_until,
      'decision_id', r.decision_id, 'decision_seq', seq, 'policy_version', r.policy_version, 'record', r.record,
      'application_id', r.application_id, 'segment', r.segment, 'category', category, 'reason', reason,
      'origin_seq', origin, 'income_fraction', income_fraction)
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
  if granted > 0 then redis.call('HSET', key, 'budget', r.budget) end
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
budgets = batch.budgets
local answers = {}
for i, r in ipairs(batch.requests) do
  r.retention_ms = batch.retention_ms
  answers[i] = post(r)
end
return cjson.encode({version = version, answers = answers})
"""
)

# The loan rules (`loans.py`), function for function: the one rounding (`fen`), the calendar, the
# schedule, interest by the day, days past due. A loan is one JSON value (`loan:<id>`): read, changed,
# written back whole.
_LOANS = r"""
local function fen(x) return math.floor(x + 0.5) end
local function interest_fen(principal, apr, days) return fen(principal * apr * days / 365) end
local function day_of(ms, day_ms, offset_ms) return math.floor((ms + offset_ms) / day_ms) end
local function instant_of(day, day_ms, offset_ms) return day * day_ms - offset_ms end
local function left(i) return i.interest - i.interest_paid + i.principal - i.principal_paid end
local function schedule(principal, apr, start_day, due_days)
  local factor, total, previous = 1.0, 0.0, start_day
  for _, day in ipairs(due_days) do
    factor = factor / (1 + apr * (day - previous) / 365)
    total = total + factor
    previous = day
  end
  local payment = principal
  if total > 0 then payment = fen(principal / total) end
  local remaining = principal
  previous = start_day
  local out = {}
  for n, day in ipairs(due_days) do
    local interest = interest_fen(remaining, apr, day - previous)
    local part = remaining
    if n < #due_days then part = math.min(remaining, math.max(0, payment - interest)) end
    out[n] = {due = day, principal = part, planned_interest = interest, interest = 0, interest_paid = 0,
      principal_paid = 0, step = -1}
    remaining = remaining - part
    previous = day
  end
  return out
end
local function accrue(loan, day)
  local apr = tonumber(loan.apr)
  while loan.since_day < day and loan.outstanding > 0 do
    local current = nil
    for _, i in ipairs(loan.instalments) do
      if i.due > loan.since_day then current = i; break end
    end
    if not current then return end  -- no interest after the last due day
    local till = math.min(current.due, day)
    current.interest = current.interest + interest_fen(loan.outstanding, apr, till - loan.since_day)
    loan.since_day = till
  end
end
local function days_past_due(loan, day)
  local worst = 0
  for _, i in ipairs(loan.instalments) do
    if i.due < day and left(i) > 0 and day - i.due > worst then worst = day - i.due end
  end
  return worst
end
local function settled(loan)
  if loan.outstanding ~= 0 then return false end
  for _, i in ipairs(loan.instalments) do if left(i) ~= 0 then return false end end
  return true
end
local function loan_key(id) return P .. 'loan:' .. id end
local function load_loan(id)
  local raw = redis.call('GET', loan_key(id))
  if not raw then return nil end
  local loan = cjson.decode(raw)
  if #loan.instalments == 0 then loan.instalments = {} end
  return loan
end
local function save_loan(loan) redis.call('SET', loan_key(loan.loan_id), cjson.encode(loan)) end
local function active_loans(customer)
  local loans = {}
  for n, id in ipairs(redis.call('LRANGE', P .. 'loans:' .. customer, 0, -1)) do loans[n] = load_loan(id) end
  return loans
end
-- Days past due of the customer at `at_ms` (each loan accrued, in a copy, up to its day).
local function customer_days_past_due(customer, at_ms)
  local worst = 0
  for _, loan in ipairs(active_loans(customer)) do
    local today = day_of(at_ms, loan.day_ms, loan.offset_ms)
    accrue(loan, today)
    worst = math.max(worst, days_past_due(loan, today))
  end
  return worst
end
"""

# ARGV 2: {retention_ms, kind: "draw" | "repay", requests: [DrawRequest | RepayRequest, ...]}.
# Reply: {version, answers: [Movement fields, ...]}, in order (book.draw / book.repay).
_MOVE = (
    _LEDGER
    + _LOANS
    + r"""
local FIELDS = {'customer', 'amount', 'approved', 'balance', 'balance_seq', 'available', 'limit', 'decision_id',
  'application_id', 'category', 'reason', 'window_reason', 'applied', 'at', 'repayment', 'policy_version', 'partner',
  'loan_id', 'interest_fen', 'principal_fen', 'credit_fen', 'credit_balance_fen', 'balance_fen', 'allocations',
  'cured_days', 'cured_day', 'cured_day_ms', 'cured_offset_ms', 'cured_loans'}
local DEFAULTS = {partner = '', loan_id = '', interest_fen = 0, principal_fen = 0, credit_fen = 0, credit_balance_fen = 0,
  balance_fen = 0, allocations = '[]', cured_days = 0, cured_day = 0, cured_day_ms = 0, cured_offset_ms = 0,
  cured_loans = '[]'}
local function seen(key, customer)
  local v = redis.call('HMGET', key, unpack(FIELDS))
  if not v[1] then return nil end
  if v[1] ~= customer then return {conflict = 1} end
  local m = {fresh = 0}
  for i, name in ipairs(FIELDS) do m[name] = v[i] or '' end
  return m
end
local function store(key, m, retention)
  local args = {}
  for _, name in ipairs(FIELDS) do
    if m[name] == nil then m[name] = DEFAULTS[name] end
    args[#args + 1] = name; args[#args + 1] = tostring(m[name])
  end
  redis.call('HSET', key, unpack(args))
  keep_for(key, retention)
  m.fresh = 1
  return m
end
local function balance_cap(limit, absolute_cap, opened, fraction_now)
  local cap = absolute_cap
  if opened ~= '' and fraction_now ~= '' then
    local t, n = tonumber(opened), tonumber(fraction_now)
    if n < t then cap = math.min(cap, math.floor(limit * n / t)) end
  end
  return cap
end
local function read_balance(bkey)
  local bh = redis.call('HMGET', bkey, 'balance', 'seq', 'principal_fen', 'credit_fen')
  local balance = tonumber(bh[1] or '0')
  -- a balance kept before loans were booked is whole CNY: its principal in fen
  return balance, tonumber(bh[2] or '0'), tonumber(bh[3] or tostring(balance * 100)), tonumber(bh[4] or '0')
end
local function book_loan(r, w, partner, principal, credit_used, seq)
  local start = day_of(r.at_ms, r.day_ms, r.offset_ms)
  local instalments = {}
  if principal > 0 then instalments = schedule(principal, tonumber(w[9]), start, r.due_days) end
  local loan = {loan_id = r.drawdown_id, customer = r.customer, principal = principal, outstanding = principal,
    apr = w[9], start_day = start, since_day = start, day_ms = r.day_ms, offset_ms = r.offset_ms, booked_ms = r.at_ms,
    credit_used = credit_used, amount = r.amount, interval = r.interval, partner = partner,
    application_id = w[7] or '', decision_id = w[6] or '', locale = r.locale, policy_version = r.policy_version,
    balance_seq = seq, instalments = instalments}
  save_loan(loan)
  if #instalments > 0 then
    redis.call('RPUSH', P .. 'loans:' .. r.customer, loan.loan_id)
    redis.call('ZADD', P .. 'lwatch', instant_of(instalments[1].due - r.remind_days, r.day_ms, r.offset_ms), loan.loan_id)
  end
end
local function draw(r, retention)
  local mkey = P .. 'mv:' .. r.drawdown_id
  local old = seen(mkey, r.customer)
  if old then return old end
  local bkey = P .. 'bal:' .. r.customer
  local balance, seq, owed, credit = read_balance(bkey)
  local w = redis.call('HMGET', P .. 'window:' .. r.customer, 'status', 'limit', 'valid_until', 'category', 'reason',
    'decision_id', 'application_id', 'income_fraction', 'apr', 'record')
  local amount_fen = r.amount * 100
  local credit_used = math.min(credit, amount_fen)
  owed = owed + amount_fen - credit_used
  local limit, ceiling = 0, 0
  local category, reason, window_reason = '', '', ''
  if not w[1] then
    category, reason = 'strategy', 'no_window'
  elseif w[1] ~= 'open' then
    category, reason, window_reason = w[4] or '', 'window_closed', w[5] or ''
    if category == '' then category = 'strategy' end
  elseif w[3] and w[3] ~= '' and tonumber(w[3]) <= r.at_ms then
    category, reason = 'strategy', 'window_expired'
  elseif r.term == 0 then
    category, reason = 'strategy', 'term_not_offered'
  elseif customer_days_past_due(r.customer, r.at_ms) >= r.close_at_days then
    category, reason = 'credit', 'own_overdue'
  else
    limit = tonumber(w[2])
    local cap = balance_cap(limit, r.absolute_cap, w[8] or '', r.income_fraction)
    ceiling = math.min(limit, cap)
    if math.ceil(owed / 100) > ceiling then
      if cap < limit then category, reason = 'regulatory', 'balance_cap' else category, reason = 'credit', 'above_available' end
    end
  end
  local approved, partner, loan_id = 0, '', ''
  if w[1] then partner = redis.call('HGET', P .. 'app:' .. (w[10] or ''), 'partner') or '' end
  if reason == '' then
    approved = 1
    balance, seq, credit = math.ceil(owed / 100), seq + 1, credit - credit_used
    redis.call('HSET', bkey, 'balance', balance, 'seq', seq, 'principal_fen', owed, 'credit_fen', credit)
    loan_id = r.drawdown_id
    book_loan(r, w, partner, amount_fen - credit_used, credit_used, seq)
  end
  return store(mkey, {customer = r.customer, amount = r.amount, approved = approved, balance = balance,
    balance_seq = seq, available = math.max(0, ceiling - balance), limit = limit, decision_id = w[6] or '',
    application_id = w[7] or '', category = category, reason = reason, window_reason = window_reason, applied = 0,
    at = r.at_ms, repayment = 0, policy_version = r.policy_version, partner = partner, loan_id = loan_id}, retention)
end
local function repay(r, retention)
  local mkey = P .. 'mv:' .. r.repayment_id
  local old = seen(mkey, r.customer)
  if old then return old end
  local bkey = P .. 'bal:' .. r.customer
  local balance, seq, owed, credit = read_balance(bkey)
  local loans = active_loans(r.customer)
  local worst_before = 0
  for _, loan in ipairs(loans) do
    local today = day_of(r.at_ms, loan.day_ms, loan.offset_ms)
    accrue(loan, today)
    worst_before = math.max(worst_before, days_past_due(loan, today))
  end
  -- allocate (loans.allocate): the oldest instalment first, interest then principal
  local queue = {}
  for position, loan in ipairs(loans) do
    for number, i in ipairs(loan.instalments) do
      if left(i) > 0 then queue[#queue + 1] = {instant_of(i.due + 1, loan.day_ms, loan.offset_ms), position, number} end
    end
  end
  table.sort(queue, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    if a[2] ~= b[2] then return a[2] < b[2] end
    return a[3] < b[3]
  end)
  local remaining = r.amount * 100
  local allocations, cured = {}, {}
  local paid_interest, paid_principal = 0, 0
  for _, q in ipairs(queue) do
    if remaining == 0 then break end
    local loan = loans[q[2]]
    local i = loan.instalments[q[3]]
    local today = day_of(r.at_ms, loan.day_ms, loan.offset_ms)
    local interest = math.min(remaining, i.interest - i.interest_paid)
    i.interest_paid = i.interest_paid + interest
    remaining = remaining - interest
    local principal = math.min(remaining, i.principal - i.principal_paid)
    i.principal_paid = i.principal_paid + principal
    loan.outstanding = loan.outstanding - principal
    remaining = remaining - principal
    paid_interest, paid_principal = paid_interest + interest, paid_principal + principal
    if interest > 0 or principal > 0 then
      allocations[#allocations + 1] = {loan_id = loan.loan_id, instalment = q[3], interest = interest,
        principal = principal, due = i.due <= today}
    end
    if i.due < today and left(i) == 0 then
      cured[#cured + 1] = {loan_id = loan.loan_id, instalment = q[3], days = today - i.due, cured_day = today,
        day_ms = loan.day_ms, offset_ms = loan.offset_ms}
    end
  end
  local worst_after = 0
  local partners = {}
  for _, loan in ipairs(loans) do
    save_loan(loan)
    partners[loan.loan_id] = loan.partner
    worst_after = math.max(worst_after, days_past_due(loan, day_of(r.at_ms, loan.day_ms, loan.offset_ms)))
    if settled(loan) then
      redis.call('LREM', P .. 'loans:' .. r.customer, 0, loan.loan_id)
      redis.call('ZREM', P .. 'lwatch', loan.loan_id)
    end
  end
  for _, e in ipairs(cured) do redis.call('RPUSH', P .. 'own:' .. r.customer, cjson.encode(e)) end
  owed, seq, credit = owed - paid_principal, seq + 1, credit + remaining
  balance = math.ceil(owed / 100)
  redis.call('HSET', bkey, 'balance', balance, 'seq', seq, 'principal_fen', owed, 'credit_fen', credit)
  local m = {customer = r.customer, amount = r.amount, approved = 1, balance = balance, balance_seq = seq,
    available = 0, limit = 0, decision_id = '', application_id = '', category = '', reason = '', window_reason = '',
    applied = math.floor((r.amount * 100 - remaining) / 100), at = r.at_ms, repayment = 1, policy_version = '',
    interest_fen = paid_interest, principal_fen = paid_principal, credit_fen = remaining, credit_balance_fen = credit,
    balance_fen = owed, allocations = '[]'}
  if #allocations > 0 then m.allocations = cjson.encode(allocations) end
  if #cured > 0 and worst_before > 0 and worst_after == 0 then
    local cure, worst, names, seen_loans = cured[#cured], 0, {}, {}
    for _, e in ipairs(cured) do
      worst = math.max(worst, e.days)
      if not seen_loans[e.loan_id] then seen_loans[e.loan_id] = true; names[#names + 1] = e.loan_id end
    end
    m.cured_days, m.cured_day, m.cured_day_ms, m.cured_offset_ms = worst, cure.cured_day, cure.day_ms, cure.offset_ms
    m.cured_loans, m.partner = cjson.encode(names), partners[cure.loan_id]
  end
  return store(mkey, m, retention)
end
local batch = cjson.decode(ARGV[2])
local answers = {}
for i, r in ipairs(batch.requests) do
  if batch.kind == 'draw' then answers[i] = draw(r, batch.retention_ms) else answers[i] = repay(r, batch.retention_ms) end
end
return cjson.encode({version = version, answers = answers})
"""
)

# ARGV 2: a JSON WatchRequest. Reply: {version, notices: [LoanNotice, ...]} (book.watch).
_WATCH = (
    _LEDGER
    + _LOANS
    + r"""
local r = cjson.decode(ARGV[2])
local notices = {}
local function notice(loan, number, step, amount)
  local seq = redis.call('INCR', P .. 'lnote_seq')
  local due = loan.instalments[number].due
  local n = {notice_id = loan.loan_id .. '|' .. number .. '|' .. step, seq = seq, loan_id = loan.loan_id,
    customer = loan.customer, instalment = number, step = step, due = due,
    pay_by_ms = instant_of(due + 1, loan.day_ms, loan.offset_ms), amount_due = amount, at_ms = r.now_ms,
    closes_window = step == r.close_at_days, close_at_days = r.close_at_days, day_ms = loan.day_ms,
    offset_ms = loan.offset_ms}
  redis.call('SET', P .. 'lnote:' .. n.notice_id, cjson.encode(n))
  redis.call('ZADD', P .. 'lnotes', seq, n.notice_id)
  notices[#notices + 1] = n
end
-- loans.next_watch: the first step after `day` of an instalment not paid for good
local function next_watch(loan, view, day)
  local found = nil
  for number, i in ipairs(view.instalments) do
    if not (i.due <= day and left(i) == 0) then
      local step = loan.instalments[number].step
      local later = nil
      if step < 0 and i.due - r.remind_days > day then later = i.due - r.remind_days end
      if not later then
        for _, s in ipairs(r.steps) do
          if s > step and i.due + s > day then later = i.due + s; break end
        end
      end
      if later and (not found or later < found) then found = later end
    end
  end
  if not found then return nil end
  return instant_of(found, loan.day_ms, loan.offset_ms)
end
local due = redis.call('ZRANGEBYSCORE', P .. 'lwatch', '-inf', r.now_ms, 'LIMIT', 0, r.limit)
local loans, came = {}, {}
for position, id in ipairs(due) do
  local raw = redis.call('GET', loan_key(id))
  local loan, view = cjson.decode(raw), cjson.decode(raw)
  loans[position] = loan
  local today = day_of(r.now_ms, loan.day_ms, loan.offset_ms)
  accrue(view, today)
  for number, i in ipairs(view.instalments) do
    local told = loan.instalments[number]
    if told.step < 0 and i.due - r.remind_days <= today and today <= i.due then
      local ahead = cjson.decode(raw)
      accrue(ahead, i.due)
      local owed = left(ahead.instalments[number])
      if owed > 0 then
        came[#came + 1] = {instant_of(i.due - r.remind_days, loan.day_ms, loan.offset_ms), position, number, 0, owed}
        told.step = 0
      end
    end
    if i.due < today and left(i) > 0 then
      for _, s in ipairs(r.steps) do
        if s > told.step and i.due + s <= today then
          came[#came + 1] = {instant_of(i.due + s, loan.day_ms, loan.offset_ms), position, number, s, left(i)}
          told.step = s
        end
      end
    end
  end
  save_loan(loan)
  local later = next_watch(loan, view, today)
  if later then redis.call('ZADD', P .. 'lwatch', later, id) else redis.call('ZREM', P .. 'lwatch', id) end
end
table.sort(came, function(a, b)
  for k = 1, 5 do if a[k] ~= b[k] then return a[k] < b[k] end end
  return false
end)
for _, c in ipairs(came) do notice(loans[c[2]], c[3], c[4], c[5]) end
return cjson.encode({version = version, notices = notices})
"""
)

# ARGV 2: a JSON CloseRequest plus retention_ms. Reply: {version, seq} (seq 0 when the window was not open).
_CLOSE = (
    _LEDGER
    + r"""
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
)

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
        income_fraction=w.get("income_fraction", ""),
    )


_MOVEMENT_TEXT = (
    "customer", "decision_id", "application_id", "category", "reason", "window_reason", "policy_version", "partner", "loan_id",
)  # fmt: skip
_MOVEMENT_INT = (
    "amount", "balance", "balance_seq", "available", "limit", "applied", "at", "interest_fen", "principal_fen", "credit_fen",
    "credit_balance_fen", "balance_fen", "cured_days", "cured_day", "cured_day_ms", "cured_offset_ms",
)  # fmt: skip


def _json_list(raw: Any) -> list[Any]:
    """A JSON array a script wrote (an empty Lua table encodes as `{}`)."""
    value = orjson.loads(raw) if isinstance(raw, str | bytes) and raw else raw
    return list(value) if isinstance(value, list) else []


def _movement(raw: Mapping[str, Any], *, fresh: bool) -> Movement:
    """A movement from a script's reply (numbers) or a hash read back (text)."""
    values: dict[str, Any] = {name: str(raw.get(name) or "") for name in _MOVEMENT_TEXT}
    values.update({name: int(float(raw.get(name) or 0)) for name in _MOVEMENT_INT})
    return Movement(
        fresh=fresh,
        approved=str(raw.get("approved")) in ("1", "1.0"),
        repayment=str(raw.get("repayment")) in ("1", "1.0"),
        allocations=tuple(Allocation(**a) for a in _json_list(raw.get("allocations"))),
        cured_loans=tuple(str(i) for i in _json_list(raw.get("cured_loans"))),
        **values,
    )


def _movement_fields(m: Movement) -> dict[str, str]:
    out = {name: str(getattr(m, name)) for name in (*_MOVEMENT_TEXT, *_MOVEMENT_INT)}
    out["approved"], out["repayment"] = ("1" if m.approved else "0"), ("1" if m.repayment else "0")
    out["allocations"] = orjson.dumps(list(m.allocations)).decode()
    out["cured_loans"] = orjson.dumps(list(m.cured_loans)).decode()
    return out


def _loan(raw: bytes | str) -> Loan:
    """A loan as a script keeps it (one JSON value)."""
    data = orjson.loads(raw)
    data["instalments"] = [InstalmentState(**i) for i in _json_list(data.get("instalments"))]
    return Loan(**data)


def _notice(data: Mapping[str, Any]) -> LoanNotice:
    return LoanNotice(**{**data, "closes_window": bool(data.get("closes_window"))})


def _balance(raw: Mapping[str, str]) -> Balance:
    balance = int(raw.get("balance") or 0)
    principal = raw.get("principal_fen")
    return Balance(balance, int(raw.get("seq") or 0), int(principal) if principal else balance * 100, int(raw.get("credit_fen") or 0))


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
FAMILIES = (
    "window:", "budget:", "programme:", "seq:", "app:", "expiry", "open", "closing", "deferred", "bal:", "mv:",
    "loan:", "loans:", "lwatch", "own:", "lnote:", "lnotes", "lnote_seq",
)  # fmt: skip


class RedisBook:
    """The book on Redis: `WindowBook`, `LendingBook` and `LiveBook`; see the module docstring for the keys.

    `guard` guards the book (its generation, fence and version: `shared/redis_state.py`): every
    script refuses a book that is not the one this process works on, with `StateLost`. With a
    replica to wait for (`durability`), `remember` and `close` return only once the book's writes so
    far reached it: what is published next never rests on a write a failover could lose.
    """

    def __init__(self, redis: Redis, prefix: str, *, retention_ms: int = 0, durability: Durability = Durability()) -> None:
        self.redis = redis
        self.prefix = prefix
        self.retention_ms = retention_ms
        self.guard = StateGuard(redis, prefix, "book", durability)
        self._post = redis.register_script(_POST)
        self._close = redis.register_script(_CLOSE)
        self._move = redis.register_script(_MOVE)
        self._watch = redis.register_script(_WATCH)

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
        for customer, balance in state.balances.items():
            pipe.hset(self._key("bal:", customer), mapping=asdict(balance))  # type: ignore[arg-type]
        for loan_id, loan in state.loans.items():
            pipe.set(self._key("loan:", loan_id), orjson.dumps(loan))
        for customer, loan_ids in state.active.items():
            if loan_ids:
                pipe.rpush(self._key("loans:", customer), *loan_ids)
        if state.watch:
            pipe.zadd(self._key("lwatch"), state.watch)  # type: ignore[arg-type]
        for customer, episodes in state.episodes.items():
            if episodes:
                pipe.rpush(self._key("own:", customer), *(orjson.dumps(e) for e in episodes))
        for notice_id, notice in state.notices.items():
            pipe.set(self._key("lnote:", notice_id), orjson.dumps(notice))
            pipe.zadd(self._key("lnotes"), {notice_id: notice.seq})
        if state.notice_seq:
            pipe.set(self._key("lnote_seq"), state.notice_seq)
        for movement_id, movement in state.movements.items():
            left = self._left(False, movement.at, now_ms)
            if left == 0:
                continue
            pipe.hset(self._key("mv:", movement_id), mapping=_movement_fields(movement))  # type: ignore[arg-type]
            if left > 0:
                pipe.pexpire(self._key("mv:", movement_id), left)
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

    async def post(self, requests: Sequence[WindowRequest], budgets: Mapping[str, BudgetTerms]) -> list[Posting]:
        """Decide the batch in one atomic script call, in order."""
        if not requests:
            return []
        # orjson writes the request dataclasses itself (fast); the script reads a null offer as none.
        # Budget terms go once per budget, not once per request (the demand forecast is a list).
        named = {r.budget for r in requests}
        body = orjson.dumps(
            {
                "retention_ms": self.retention_ms,
                "budgets": {k: t for k, t in budgets.items() if k in named},
                "requests": requests,
            }
        )
        reply = orjson.loads(await self.guard.run(self._post, body))
        self.guard.seen(reply["version"])
        return [
            Posting.unposted(conflict="conflict" in a)
            if "conflict" in a or "as_read" in a
            else Posting(
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

    async def _movements(self, kind: str, requests: Sequence[DrawRequest] | Sequence[RepayRequest]) -> list[Movement]:
        if not requests:
            return []
        body = orjson.dumps({"retention_ms": self.retention_ms, "kind": kind, "requests": requests})
        reply = orjson.loads(await self.guard.run(self._move, body, durable=True))  # told next
        self.guard.seen(reply["version"])
        answers = []
        for request, a in zip(requests, reply["answers"], strict=True):
            if "conflict" in a:
                answers.append(Movement.conflicting(request.customer, request.amount))
            else:
                answers.append(_movement(a, fresh=a["fresh"] == 1))
        return answers

    async def draw(self, requests: Sequence[DrawRequest]) -> list[Movement]:
        """Decide the drawdowns in one atomic script call, in order (each approved one booked as a loan)."""
        return await self._movements("draw", requests)

    async def repay(self, requests: Sequence[RepayRequest]) -> list[Movement]:
        """Allocate the repayments in one atomic script call, in order."""
        return await self._movements("repay", requests)

    # --- loans ---------------------------------------------------------------------------------------

    async def loans(self, loan_ids: Collection[str]) -> dict[str, Loan]:
        ids = list(loan_ids)
        if not ids:
            return {}
        raws = await self.redis.mget([self._key("loan:", i) for i in ids])
        return {i: _loan(raw) for i, raw in zip(ids, raws, strict=True) if raw}

    async def watch(self, request: WatchRequest) -> Watched:
        reply = orjson.loads(await self.guard.run(self._watch, orjson.dumps(request), durable=True))  # published next
        self.guard.seen(reply["version"])
        return Watched([_notice(n) for n in _json_list(reply["notices"])])

    async def pending_notices(self, recorded_before_ms: int, limit: int = 200) -> list[LoanNotice]:
        ids = [text(m) for m in await self.redis.zrange(self._key("lnotes"), 0, limit - 1)]
        if not ids:
            return []
        raws = await self.redis.mget([self._key("lnote:", i) for i in ids])
        notices = [_notice(orjson.loads(raw)) for raw in raws if raw]
        return [n for n in notices if n.at_ms < recorded_before_ms]

    async def notices_published(self, notice_ids: Sequence[str]) -> None:
        if notice_ids:
            await self.guard.write([["ZREM", "lnotes", *notice_ids], *(["DEL", f"lnote:{i}"] for i in notice_ids)])  # each key prefixed

    async def own_records(self, customers: Sequence[str], now: datetime, record_days: int) -> dict[str, OwnRecord]:
        """Each customer's record, worked out by the book's own rule (`Book.own_records`) from their loans and overdues."""
        if not customers:
            return {}
        lists = await self._pipeline(
            lambda pipe: [
                (pipe.lrange(self._key("loans:", c), 0, -1), pipe.lrange(self._key("own:", c), 0, -1)) for c in customers
            ]
        )
        state = BookState()
        for customer, active, episodes in zip(customers, lists[0::2], lists[1::2], strict=True):
            state.active[customer] = [text(i) for i in active]
            state.episodes[customer] = [Episode(**orjson.loads(e)) for e in episodes]
        state.loans = await self.loans([i for ids in state.active.values() for i in ids])
        return Book(state).own_records(customers, int(now.timestamp() * 1000), record_days)

    async def remember(self, decisions: Sequence[tuple[str, bytes]]) -> None:
        """Keep each decision's event; with a replica, return once the batch's writes reached it."""
        await self.guard.write([["HSETNX", f"app:{r}", "event", payload.decode()] for r, payload in decisions], durable=True)

    async def mark_published(self, records: Sequence[str]) -> None:
        # Published: a redelivery has nothing to publish again, so the kept event can go (memory).
        await self.guard.write(
            [op for r in records for op in (["HSET", f"app:{r}", "published", "1"], ["HDEL", f"app:{r}", "event"])]
        )

    async def _pipeline(self, fill: Callable[[Any], object]) -> list[Any]:
        pipe = self.redis.pipeline(transaction=False)
        fill(pipe)
        return await pipe.execute()

    # --- lifecycle -----------------------------------------------------------------------------------

    async def due_expiries(self, now: datetime, limit: int = 200) -> list[str]:
        found = await self.redis.zrangebyscore(
            self._key("expiry"), "-inf", int(now.timestamp() * 1000), start=0, num=limit
        )
        return [text(m) for m in found]

    async def open_records(self) -> list[str]:
        return sorted(text(m) for m in await self.redis.smembers(self._key("open")))

    async def record(self, record: str) -> DecisionRecord | None:
        return _record(await self.redis.hgetall(self._key("app:", record)))

    async def close(self, request: CloseRequest) -> LifecycleClosure | None:
        argument = orjson.dumps({**asdict(request), "retention_ms": self.retention_ms})
        reply = orjson.loads(await self.guard.run(self._close, argument, durable=True))  # announced next
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
        await self.guard.write([["ZREM", "closing", *records]] if records else [])

    async def due_deferred(self, now: datetime, limit: int = 200) -> list[tuple[str, bytes]]:
        due = await self.redis.zrangebyscore(
            self._key("deferred"), "-inf", int(now.timestamp() * 1000), start=0, num=limit
        )
        out = []
        for record in (text(m) for m in due):
            score = await self.redis.hget(self._key("app:", record), "deferred_score")
            if score:
                out.append((record, score if isinstance(score, bytes) else str(score).encode()))
            else:
                await self.guard.write([["ZREM", "deferred", record]])
        return out

    async def redecided(self, records: Sequence[str]) -> None:
        await self.guard.write([["ZREM", "deferred", *records]] if records else [])

    # --- reading -------------------------------------------------------------------------------------

    async def current(self, customer_id: str) -> CurrentWindow | None:
        raw, balance = await self._pipeline(
            lambda pipe: (
                pipe.hgetall(self._key("window:", customer_id)),
                pipe.hget(self._key("bal:", customer_id), "balance"),
            )
        )
        entry = _window(raw)
        return CurrentWindow.found(customer_id, entry, int(text(balance) or 0) if balance else 0)

    async def balance(self, customer_id: str) -> Balance:
        return _balance({text(k): text(v) for k, v in (await self.redis.hgetall(self._key("bal:", customer_id))).items()})

    async def budgets(self, keys: Sequence[str]) -> dict[str, Reserved]:
        """Reserved per budget (one round trip, no key scan); budgets never reserved are absent."""
        answers = await self._pipeline(
            lambda pipe: [pipe.hmget(self._key("budget:", k), ["exposure", "el_fen"]) for k in keys]
        )
        return {
            key: Reserved(int(text(exposure) or 0), int(text(el_fen) or 0))
            for key, (exposure, el_fen) in zip(keys, answers, strict=True)
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
            state.budgets[key.removeprefix(self._key("budget:"))] = Reserved(
                int(raw.get("exposure") or 0), int(raw.get("el_fen") or 0)
            )
        for key in await scan("programme:"):
            state.programmes[key.removeprefix(self._key("programme:"))] = int(
                text(await self.redis.hget(key, "reserved")) or 0
            )
        for key in await scan("seq:"):
            state.seqs[key.removeprefix(self._key("seq:"))] = int(text(await self.redis.get(key)) or 0)
        for key in await scan("app:"):
            if (record := _record(await self.redis.hgetall(key))) is not None:
                state.records[key.removeprefix(self._key("app:"))] = record
        for family, target in (("expiry", state.expiry), ("closing", state.closing), ("deferred", state.deferred)):
            for member, score in await self.redis.zrange(self._key(family), 0, -1, withscores=True):
                target[text(member)] = int(score)
        state.open = {text(m) for m in await self.redis.smembers(self._key("open"))}
        for key in await scan("bal:"):
            raw = {text(k): text(v) for k, v in (await self.redis.hgetall(key)).items()}
            state.balances[key.removeprefix(self._key("bal:"))] = _balance(raw)
        for key in await scan("loan:"):
            state.loans[key.removeprefix(self._key("loan:"))] = _loan(await self.redis.get(key))
        for key in await scan("loans:"):
            state.active[key.removeprefix(self._key("loans:"))] = [text(i) for i in await self.redis.lrange(key, 0, -1)]
        for key in await scan("own:"):
            episodes = await self.redis.lrange(key, 0, -1)
            state.episodes[key.removeprefix(self._key("own:"))] = [Episode(**orjson.loads(e)) for e in episodes]
        for key in await scan("lnote:"):
            notice = _notice(orjson.loads(await self.redis.get(key)))
            state.notices[notice.notice_id] = notice
        for member, score in await self.redis.zrange(self._key("lwatch"), 0, -1, withscores=True):
            state.watch[text(member)] = int(score)
        state.notice_seq = int(text(await self.redis.get(self._key("lnote_seq"))) or 0)
        for key in await scan("mv:"):
            raw = {text(k): text(v) for k, v in (await self.redis.hgetall(key)).items()}
            if raw:
                state.movements[key.removeprefix(self._key("mv:"))] = _movement(raw, fresh=False)
        return state
