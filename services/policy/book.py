"""The portfolio book: the one ledger of budgets, reservations and current windows. Pure.

Every place that keeps a book runs these rules: the in-memory store of a shadow replica and of the
handler tests (`memory_book.py`), the rebuild from `credit.windows` (`rebuild.py`), `creditwindow
simulate` and the pacing experiment. The Redis store (`redis_book.py`) runs them atomically as a Lua
script, its twin line for line; `tests/e2e/test_book_twins.py` drives both through the same random
streams and compares every value.

Money, one rule: exposure is whole CNY (limits are multiples of `round_to`), expected loss is
integer fen, `expected_loss_fen(limit, el_rate) = floor(limit x el_rate x 100 + 0.5)`.

The rules, in the order a decision applies them:

- **grant** (the pacing charge and the budget): utilisation u is the larger of the exposure and
  expected-loss shares already reserved; with pacing on, an offer must earn at least
  ``max_margin x u ** steepness`` (else ``budget_paced``); the programme's boosted part is cut to the
  programme's room; the limit is cut to what the segment has left and rounded down (below the
  minimum: ``budget_exhausted``).
- **reserve**: the grant's exposure, expected loss and programme part are added to the segment.
- **supersede**: a decision about the customer (anything but a system closure) becomes their
  current window; the window it replaces is **released** (its reservation given back). The new one
  is reserved first, while the old one still counts. Windows are ordered by the application behind
  them: a re-decision keeps its original application's order, so it never supersedes the window of
  a newer application (an offer is then refused as ``newer_application``).
- **expire / close**: an open window past its `valid_until`, or in a newly paused segment, is
  closed and released; the closure is queued for announcement.
- A record is decided once: asking again returns the first answer. An application id that
  belongs to another customer is a conflict (refused). The closure of an application that could not
  be read defers to a real decision of the same application (`fallback_of`).
"""

from __future__ import annotations

import math
from dataclasses import replace

from services.policy.ports import (
    Allocation,
    BookState,
    BudgetTerms,
    CloseRequest,
    DecideRequest,
    DecisionRecord,
    OfferTerms,
    Reserved,
    WindowEntry,
)

__all__ = ["Book", "Grant", "expected_loss_fen", "grant", "required_margin", "round_down", "utilisation"]


def round_down(amount: float, step: int) -> int:
    """Down to a multiple of `step` (the epsilon forgives a float a hair below the multiple)."""
    return int(math.floor(amount / step + 1e-9) * step)


def expected_loss_fen(limit: int, el_rate: float) -> int:
    """Expected loss of a limit, in whole fen: the one rounding of money in the book."""
    return int(math.floor(limit * el_rate * 100 + 0.5))


def utilisation(reserved: Reserved, budget: BudgetTerms) -> float:
    exposure = reserved.exposure / budget.exposure if budget.exposure > 0 else 1.0
    loss = (reserved.el_fen / 100) / budget.expected_loss if budget.expected_loss > 0 else 1.0
    return min(1.0, max(exposure, loss, 0.0))


def required_margin(u: float, budget: BudgetTerms) -> float:
    """The pacing charge: the margin an offer must earn at utilisation u (0 with pacing off)."""
    if not budget.pacing:
        return 0.0
    return float(budget.max_margin * (u**budget.steepness))


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
    if offer.margin < required_margin(utilisation(reserved, budget), budget):
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

    def reserve(self, segment: str, exposure: int, el_fen: int, programme: str, part: int, sign: int = 1) -> None:
        """Add (sign 1) or give back (sign -1) a window's exposure, expected loss and programme part."""
        reserved = self.state.budgets.setdefault(segment, Reserved())
        reserved.exposure += sign * exposure
        reserved.el_fen += sign * el_fen
        if programme and part > 0:
            self.state.programmes[programme] = self.state.programmes.get(programme, 0) + sign * part

    def release(self, record: str) -> int:
        """Give an open window's reservation back; returns the exposure released (0 if it was not open)."""
        entry = self.state.records.get(record)
        if entry is None or entry.status != "open":
            return 0
        self.reserve(entry.segment, entry.granted, entry.el_fen, entry.programme, entry.part, sign=-1)
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

    def decide(self, r: DecideRequest) -> Allocation:
        seen = self.state.records.get(r.record)
        if seen is None and r.fallback_of and (read := self.state.records.get(r.fallback_of)) is not None:
            # The application was read and decided after all: its decision stands.
            conflict = read.customer != r.customer
            return Allocation(fresh=False, seq=0, granted=0, refusal=None, programme_part=0, available=0, conflict=conflict, decided_as_read=not conflict)
        if seen is not None:
            if seen.customer != r.customer:
                return Allocation(fresh=False, seq=0, granted=0, refusal=None, programme_part=0, available=0, conflict=True)
            return Allocation(
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
            reserved = self.state.budgets.get(r.segment, Reserved())
            result = grant(offer, reserved, self.state.programmes.get(offer.programme, 0), r.budget)
            available, refusal = result.available, result.refusal
            if result.limit > 0:
                granted, part, bound = result.limit, result.part, result.budget_bound
                el_fen = expected_loss_fen(granted, offer.el_rate)
                self.reserve(r.segment, granted, el_fen, offer.programme, part)
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
            )  # fmt: skip
            self.supersede(r.customer, r.record, window, offer.valid_until_ms if offer is not None else 0)
        self.state.records[r.record] = DecisionRecord(
            seq=seq, granted=granted, status=status, customer=r.customer, segment=r.segment, decision_id=r.decision_id,
            application_id=r.application_id, policy_version=r.policy_version, refusal=refusal, part=part,
            available=available, budget_bound=bound, el_fen=el_fen, programme=offer.programme if offer is not None else "",
            region=r.region, channel=r.channel, locale=r.locale, partner=r.partner, model_id=r.model_id,
            decided_at=r.decided_at_ms, deferred_score=r.deferred_score,
        )  # fmt: skip
        if r.deferred_score:
            self.state.deferred[r.record] = r.deferred_until_ms
        return Allocation(
            fresh=True, seq=seq, granted=granted, refusal=refusal or None, programme_part=part, available=available,
            budget_bound=bound, expected_loss_fen=el_fen, decided_at_ms=r.decided_at_ms,
        )  # fmt: skip

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

    def restore(self, record: str, entry: DecisionRecord, window: WindowEntry | None, valid_until_ms: int) -> None:
        """Book a decision as it was published (a rebuild): reserve what it granted, supersede unless it
        left the customer's window alone (`window` None), and raise the customer's sequence to it."""
        self.state.seqs[entry.customer] = max(self.state.seqs.get(entry.customer, 0), entry.seq)
        self.state.records[record] = entry
        if entry.status == "open":
            self.reserve(entry.segment, entry.granted, entry.el_fen, entry.programme, entry.part)
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
            entry.closure_category, entry.closure_reason, entry.closure_trigger = request.category, request.reason, request.trigger
        window = self.state.windows.get(customer)
        if window is not None and window.record == request.record:
            self.state.windows[customer] = replace(
                window, status="closed", limit=0, apr="", valid_until=None, decision_id=request.closure_id,
                decision_seq=seq, category=request.category, reason=request.reason,
            )  # fmt: skip
