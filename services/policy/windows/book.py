"""The portfolio book: the one ledger of budgets, reservations and current windows. Pure.

Every place that keeps a book runs these rules: the in-memory store of a shadow replica and of the
handler tests (`memory_book.py`), the rebuild from `credit.windows` (`rebuild.py`), `creditwindow
simulate` and the pacing experiment. The Redis store (`redis_book.py`) runs them atomically as a Lua
script, its twin line for line; `tests/e2e/test_book_twins.py` drives both through the same random
streams and compares every value.

Money, one rule: exposure is whole CNY (limits are multiples of `round_to`), expected loss is
integer fen, `expected_loss_fen(limit, el_rate) = floor(limit x el_rate x 100 + 0.5)`.

The rules, in the order a decision applies them:

- **grant** (pacing and the budget): with pacing on and a forecast of the period's demand, an offer
  must earn the smallest margin whose demand still to come fits what the budget has left
  (`required_margin`; else ``budget_paced``); the programme's boosted part is cut to the programme's
  room; the limit is cut to what the budget has left and rounded down (below the minimum:
  ``budget_exhausted``).
- **reserve**: the grant's exposure, expected loss and programme part are added to the budget the
  decision falls in (the segment's, of the current period: `budget_key`), named on the record so a
  release gives it back to the same budget.
- **supersede**: a decision about the customer (anything but a system closure) becomes their
  current window; the window it replaces is **released** (its reservation given back). The new one
  is reserved first, while the old one still counts. Windows are ordered by the application behind
  them: a re-decision keeps its original application's order, so it never supersedes the window of
  a newer application (an offer is then refused as ``newer_application``).
- **expire / close**: an open window past its `valid_until`, or in a newly paused segment, is
  closed and released; the closure is queued for announcement.
- **draw / repay**: a drawdown is approved when the customer's window is open and unexpired and
  the balance after it stays within the window's limit and the regulatory cap in force now (the
  absolute cap; a tighter income rule than the window was opened under caps it at the limit scaled
  down by the same ratio); else refused, in the window's own category when it is closed. A repayment
  lowers the balance, never below zero. The balance is the customer's: it outlives their windows.
  Each is decided once by its id.
- A record is decided once: asking again returns the first answer. An application id that
  belongs to another customer is a conflict (refused). The closure of an application that could not
  be read defers to a real decision of the same application (`fallback_of`).
"""

from __future__ import annotations

import math
from dataclasses import replace

from services.policy.windows.model import (
    Balance,
    BookState,
    BudgetTerms,
    CloseRequest,
    DecisionRecord,
    DrawRequest,
    Movement,
    OfferTerms,
    Posting,
    RepayRequest,
    Reserved,
    WindowEntry,
    WindowRequest,
)

__all__ = [
    "Book",
    "Grant",
    "balance_cap",
    "budget_key",
    "expected_loss_fen",
    "grant",
    "required_margin",
    "round_down",
    "utilisation",
]


def round_down(amount: float, step: int) -> int:
    """Down to a multiple of `step` (the epsilon forgives a float a hair below the multiple)."""
    return int(math.floor(amount / step + 1e-9) * step)


def expected_loss_fen(limit: int, el_rate: float) -> int:
    """Expected loss of a limit, in whole fen: the one rounding of money in the book."""
    return int(math.floor(limit * el_rate * 100 + 0.5))


def budget_key(segment: str, period: str = "") -> str:
    """The book's key of a segment's budget in a period (`segment/period`), or for all time (`segment`)."""
    return f"{segment}/{period}" if period else segment


def utilisation(reserved: Reserved, budget: BudgetTerms) -> float:
    exposure = reserved.exposure / budget.exposure if budget.exposure > 0 else 1.0
    loss = (reserved.el_fen / 100) / budget.expected_loss if budget.expected_loss > 0 else 1.0
    return min(1.0, max(exposure, loss, 0.0))


def required_margin(budget: BudgetTerms, reserved: Reserved) -> float:
    """The margin an offer must earn now: pacing against the demand still to come in the period.

    The demand still to come at margin m is the forecast demand(m) x (1 - elapsed). The answer is the
    smallest forecast margin whose demand to come fits the room left, in exposure and in expected
    loss, times (1 + slack): -inf when even the whole forecast demand fits (every offer opens), the
    largest forecast margin when none does. Pacing off or no forecast: -inf.
    """
    if not budget.pacing or not budget.demand:
        return -math.inf
    to_come = 1.0 - budget.elapsed
    room_exposure = max(0, budget.exposure - reserved.exposure) * (1.0 + budget.slack)
    room_loss = max(0.0, budget.expected_loss - reserved.el_fen / 100) * (1.0 + budget.slack)
    for i, (margin, exposure, loss) in enumerate(budget.demand):
        if exposure * to_come <= room_exposure and loss * to_come <= room_loss:
            return -math.inf if i == 0 else margin
    return budget.demand[-1][0]


def balance_cap(limit: int, absolute_cap: int, opened_fraction: str, fraction_now: str) -> int:
    """The regulatory cap on a customer's balance now, as far as the book can know it.

    The absolute cap in force now; and when the income rule is tighter now than when the window was
    opened, the limit scaled down by the same ratio (the book keeps no income: the limit was at most
    income x the old fraction, so this never allows more than income x the new one).
    """
    cap = absolute_cap
    if opened_fraction and fraction_now:
        then, now = float(opened_fraction), float(fraction_now)
        if now < then:
            cap = min(cap, math.floor(limit * now / then))
    return cap


class Grant:
    """What the budget grants of an offer."""

    __slots__ = ("available", "budget_bound", "limit", "part", "refusal")

    def __init__(self, limit: int, refusal: str, part: int, available: int, budget_bound: bool) -> None:
        self.limit = limit  # 0 when refused
        self.refusal = refusal  # '' | budget_paced | budget_exhausted
        self.part = part
        self.available = available
        self.budget_bound = budget_bound


def grant(offer: OfferTerms, reserved: Reserved, programme_reserved: int, budget: BudgetTerms) -> Grant:
    """The pacing charge and the budget, for one offer against what is reserved now."""
    room_exposure = max(0, budget.exposure - reserved.exposure)
    room_loss: float = room_exposure
    if offer.el_rate > 0:
        room_loss = max(0, budget.expected_loss - reserved.el_fen / 100) / offer.el_rate
    available = round_down(min(room_exposure, room_loss), budget.round_to)
    if offer.margin < required_margin(budget, reserved):
        return Grant(0, "budget_paced", 0, available, False)
    limit = offer.limit
    part = offer.part
    if part > 0 and offer.programme:
        room = max(0, budget.programme_budget - programme_reserved)
        if part > room:
            limit -= part - room
            part = room
    limit = round_down(min(limit, available), budget.round_to)
    if limit < budget.min_limit:
        return Grant(0, "budget_exhausted", 0, available, False)
    return Grant(limit, "", min(part, limit), available, limit < offer.limit and limit == available)


class Book:
    """A book in memory. Methods mirror the Lua script's entry points one to one."""

    def __init__(self, state: BookState | None = None) -> None:
        self.state = state or BookState()

    # --- the ledger's primitives ------------------------------------------------------------------

    def reserve(self, budget: str, exposure: int, el_fen: int, programme: str, part: int, sign: int = 1) -> None:
        """Add (sign 1) or give back (sign -1) a window's exposure, expected loss and programme part."""
        reserved = self.state.budgets.setdefault(budget, Reserved())
        reserved.exposure += sign * exposure
        reserved.el_fen += sign * el_fen
        if programme and part > 0:
            self.state.programmes[programme] = self.state.programmes.get(programme, 0) + sign * part

    def release(self, record: str) -> int:
        """Give an open window's reservation back; returns the exposure released (0 if it was not open)."""
        entry = self.state.records.get(record)
        if entry is None or entry.status != "open":
            return 0
        self.reserve(entry.budget or entry.segment, entry.granted, entry.el_fen, entry.programme, entry.part, sign=-1)
        entry.status = "released"
        self.state.expiry.pop(record, None)
        self.state.open.discard(record)
        return entry.granted

    def supersede(self, customer: str, record: str, window: WindowEntry, valid_until_ms: int) -> None:
        """Make `record` the customer's current window, releasing the one it replaces."""
        previous = self.state.windows.get(customer)
        if previous is not None and previous.record != record:
            self.release(previous.record)
        self.state.windows[customer] = window
        if window.status == "open":
            self.state.expiry[record] = valid_until_ms
            self.state.open.add(record)

    def next_seq(self, customer: str) -> int:
        seq = self.state.seqs.get(customer, 0) + 1
        self.state.seqs[customer] = seq
        return seq

    # --- entry points ------------------------------------------------------------------------------

    def post(self, r: WindowRequest, budget: BudgetTerms) -> Posting:
        """Decide one request; `budget` is the terms of the budget it names (`r.budget`)."""
        seen = self.state.records.get(r.record)
        if seen is None and r.fallback_of and (read := self.state.records.get(r.fallback_of)) is not None:
            # The application was read and decided after all: its decision stands.
            return Posting.unposted(conflict=read.customer != r.customer)
        if seen is not None:
            if seen.customer != r.customer:
                return Posting.unposted(conflict=True)
            return Posting(
                fresh=False, seq=seen.seq, granted=seen.granted, refusal=seen.refusal or None, programme_part=seen.part,
                available=seen.available, budget_bound=seen.budget_bound, expected_loss_fen=seen.el_fen,
                decided_at_ms=seen.decided_at, stored_event=seen.event, published=seen.published,
            )  # fmt: skip
        seq = self.next_seq(r.customer)
        original = self.state.records.get(r.redecides) if r.redecides else None
        origin = original.seq if original is not None else seq
        current = self.state.windows.get(r.customer)
        outdated = r.supersedes and current is not None and current.origin_seq > origin
        granted, refusal, part, available, bound, el_fen = 0, "", 0, 0, False, 0
        offer = r.offer
        if offer is not None and outdated:
            refusal = "newer_application"  # a newer application of the customer was decided meanwhile
        elif offer is not None:
            reserved = self.state.budgets.get(r.budget, Reserved())
            result = grant(offer, reserved, self.state.programmes.get(offer.programme, 0), budget)
            available, refusal = result.available, result.refusal
            if result.limit > 0:
                granted, part, bound = result.limit, result.part, result.budget_bound
                el_fen = expected_loss_fen(granted, offer.el_rate)
                self.reserve(r.budget, granted, el_fen, offer.programme, part)
        status = "open" if granted > 0 else "closed"
        if r.supersedes and not outdated:
            category, reason = r.category, r.reason
            if granted == 0 and offer is not None:
                category, reason = "strategy", refusal
            window = WindowEntry(
                status=status, limit=granted, apr=offer.apr if (offer is not None and granted > 0) else "",
                valid_until=offer.valid_until_ms if (offer is not None and granted > 0) else None,
                decision_id=r.decision_id, decision_seq=seq, policy_version=r.policy_version, record=r.record,
                application_id=r.application_id, segment=r.segment,
                category="" if granted > 0 else category, reason="" if granted > 0 else reason, origin_seq=origin,
                income_fraction=offer.income_fraction if (offer is not None and granted > 0) else "",
            )  # fmt: skip
            self.supersede(r.customer, r.record, window, offer.valid_until_ms if offer is not None else 0)
        self.state.records[r.record] = DecisionRecord(
            seq=seq, granted=granted, status=status, customer=r.customer, segment=r.segment, decision_id=r.decision_id,
            application_id=r.application_id, policy_version=r.policy_version, refusal=refusal, part=part,
            available=available, budget_bound=bound, el_fen=el_fen, programme=offer.programme if offer is not None else "",
            budget=r.budget if granted > 0 else "", region=r.region, channel=r.channel, locale=r.locale, partner=r.partner, model_id=r.model_id,
            decided_at=r.decided_at_ms, deferred_score=r.deferred_score,
        )  # fmt: skip
        if r.deferred_score:
            self.state.deferred[r.record] = r.deferred_until_ms
        return Posting(
            fresh=True, seq=seq, granted=granted, refusal=refusal or None, programme_part=part, available=available,
            budget_bound=bound, expected_loss_fen=el_fen, decided_at_ms=r.decided_at_ms,
        )  # fmt: skip

    def draw(self, r: DrawRequest) -> Movement:
        """Decide a drawdown against the customer's window and balance (once per drawdown id)."""
        seen = self._seen(r.drawdown_id, r.customer, r.amount)
        if seen is not None:
            return seen
        balance = self.state.balances.get(r.customer, Balance())
        window = self.state.windows.get(r.customer)
        limit = ceiling = 0
        category = reason = window_reason = ""
        if window is None:
            category, reason = "strategy", "no_window"
        elif window.status != "open":
            category, reason, window_reason = window.category or "strategy", "window_closed", window.reason
        elif window.valid_until is not None and window.valid_until <= r.at_ms:
            category, reason = "strategy", "window_expired"
        else:
            limit = window.limit
            cap = balance_cap(limit, r.absolute_cap, window.income_fraction, r.income_fraction)
            ceiling = min(limit, cap)
            if balance.balance + r.amount > ceiling:
                category, reason = ("regulatory", "balance_cap") if cap < limit else ("credit", "above_available")
        approved = reason == ""
        if approved:
            balance = Balance(balance.balance + r.amount, balance.seq + 1)
            self.state.balances[r.customer] = balance
        movement = Movement(
            fresh=True, customer=r.customer, amount=r.amount, approved=approved, balance=balance.balance,
            balance_seq=balance.seq, available=max(0, ceiling - balance.balance), limit=limit,
            decision_id=window.decision_id if window is not None else "",
            application_id=window.application_id if window is not None else "",
            category=category, reason=reason, window_reason=window_reason, at=r.at_ms, policy_version=r.policy_version,
        )  # fmt: skip
        self.state.movements[r.drawdown_id] = replace(movement, fresh=False)
        return movement

    def repay(self, r: RepayRequest) -> Movement:
        """Apply a repayment to the customer's balance, never below zero (once per repayment id)."""
        seen = self._seen(r.repayment_id, r.customer, r.amount)
        if seen is not None:
            return seen
        balance = self.state.balances.get(r.customer, Balance())
        applied = min(r.amount, balance.balance)
        balance = Balance(balance.balance - applied, balance.seq + 1)
        self.state.balances[r.customer] = balance
        movement = Movement(
            fresh=True, customer=r.customer, amount=r.amount, approved=True, balance=balance.balance,
            balance_seq=balance.seq, applied=applied, at=r.at_ms, repayment=True,
        )  # fmt: skip
        self.state.movements[r.repayment_id] = replace(movement, fresh=False)
        return movement

    def _seen(self, movement_id: str, customer: str, amount: int) -> Movement | None:
        seen = self.state.movements.get(movement_id)
        if seen is None:
            return None
        if seen.customer != customer:
            return Movement.conflicting(customer, amount)
        return replace(seen, fresh=False)

    def close(self, r: CloseRequest) -> int | None:
        """Close an open window (expiry, pause) and release it; the closure's sequence, or None."""
        entry = self.state.records.get(r.record)
        if entry is None or entry.status != "open":
            return None
        self.release(r.record)
        seq = self.next_seq(entry.customer)
        entry.status = "closed"
        entry.closure_id, entry.closure_seq, entry.closure_at = r.closure_id, seq, r.at_ms
        entry.closure_category, entry.closure_reason, entry.closure_trigger = r.category, r.reason, r.trigger
        window = self.state.windows.get(entry.customer)
        if window is not None and window.record == r.record:
            self.state.windows[entry.customer] = replace(
                window, status="closed", limit=0, apr="", valid_until=None, decision_id=r.closure_id,
                decision_seq=seq, category=r.category, reason=r.reason,
            )  # fmt: skip
        self.state.closing[r.record] = seq
        return seq

    def remember(self, record: str, event: bytes) -> None:
        entry = self.state.records[record]
        if entry.event is None:
            entry.event = event

    def mark_published(self, record: str) -> None:
        entry = self.state.records[record]
        entry.published = True
        entry.event = None  # a redelivery has nothing to publish again

    def closure_published(self, record: str) -> None:
        self.state.closing.pop(record, None)

    def redecided(self, record: str) -> None:
        self.state.deferred.pop(record, None)

    def due_expiries(self, now_ms: int, limit: int = 200) -> list[str]:
        due = sorted((at, record) for record, at in self.state.expiry.items() if at <= now_ms)
        return [record for _, record in due[:limit]]

    def due_deferred(self, now_ms: int, limit: int = 200) -> list[tuple[str, bytes]]:
        due = sorted((at, record) for record, at in self.state.deferred.items() if at <= now_ms)
        return [(record, self.state.records[record].deferred_score.encode()) for _, record in due[:limit]]

    def pending_closures(self, limit: int = 200) -> list[str]:
        return [record for _, record in sorted((seq, r) for r, seq in self.state.closing.items())[:limit]]

    # --- restoring from the log ---------------------------------------------------------------------

    def restore_movement(self, movement_id: str, movement: Movement) -> None:
        """Book a published drawdown outcome or repayment: its answer, and the balance if it is newer."""
        self.state.movements.setdefault(movement_id, replace(movement, fresh=False))
        current = self.state.balances.get(movement.customer)
        if current is None or movement.balance_seq > current.seq:
            self.state.balances[movement.customer] = Balance(movement.balance, movement.balance_seq)

    def restore(self, record: str, entry: DecisionRecord, window: WindowEntry | None, valid_until_ms: int) -> None:
        """Book a decision as it was published (a rebuild): reserve what it granted, supersede unless it
        left the customer's window alone (`window` None), and raise the customer's sequence to it."""
        self.state.seqs[entry.customer] = max(self.state.seqs.get(entry.customer, 0), entry.seq)
        self.state.records[record] = entry
        if entry.status == "open":
            self.reserve(entry.budget or entry.segment, entry.granted, entry.el_fen, entry.programme, entry.part)
        current = self.state.windows.get(entry.customer)
        if window is not None and not (current is not None and current.origin_seq > window.origin_seq):
            self.supersede(entry.customer, record, window, valid_until_ms)

    def restore_closure(self, request: CloseRequest, seq: int, customer: str) -> None:
        """Book a published lifecycle closure: release the window it closed, as `close` did."""
        self.state.seqs[customer] = max(self.state.seqs.get(customer, 0), seq)
        self.release(request.record)
        entry = self.state.records.get(request.record)
        if entry is not None:
            entry.status = "closed"
            entry.closure_id, entry.closure_seq, entry.closure_at = request.closure_id, seq, request.at_ms
            entry.closure_category, entry.closure_reason, entry.closure_trigger = (
                request.category,
                request.reason,
                request.trigger,
            )
        window = self.state.windows.get(customer)
        if window is not None and window.record == request.record:
            self.state.windows[customer] = replace(
                window, status="closed", limit=0, apr="", valid_until=None, decision_id=request.closure_id,
                decision_seq=seq, category=request.category, reason=request.reason,
            )  # fmt: skip
