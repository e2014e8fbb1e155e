"""The portfolio book's data model: what it is asked, what it answers, what it holds. Plain values.

The book's rules (`book.py`), its Lua twin (`adapters/redis_book.py`) and its memory store
(`adapters/memory_book.py`) speak these; the ports the rooms reach the book through are in
`windows/ports.py` and `lending/ports.py`.

Money, one rule: limits and exposure are whole CNY (a limit is a multiple of `round_to`), expected
loss is integer fen (see `book.expected_loss_fen`), so every sum in the book is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from shared.contracts import DEFAULT_LOCALE

__all__ = [
    "Posting",
    "Balance",
    "BookState",
    "BudgetTerms",
    "CloseRequest",
    "CurrentWindow",
    "WindowRequest",
    "DecisionRecord",
    "Demand",
    "DrawRequest",
    "LifecycleClosure",
    "Movement",
    "OfferTerms",
    "RepayRequest",
    "Reserved",
    "WindowEntry",
]


# --- what the book is asked ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfferTerms:
    """The window the rules would open, before the budget has its say."""

    limit: int  # CNY
    el_rate: float  # expected loss per unit of limit: PD x LGD
    margin: float  # expected profit per unit of limit a year
    apr: str  # as it is stored and announced (repr of the float)
    valid_until_ms: int
    programme: str = ""  # the segment programme charged with `part`, if any
    part: int = 0  # the part of the limit due to the programme boost
    income_fraction: str = ""  # the income rule in force (repr): a later, tighter rule caps the balance


# A forecast of a period's demand for one segment: for each margin, the exposure and expected loss
# (CNY) the period's offers earning at least that margin would take. Margins ascending, demand falling.
Demand = tuple[tuple[float, float, float], ...]


@dataclass(frozen=True, slots=True)
class BudgetTerms:
    """What the active policy says about the segment's budget now: plain numbers, as the Lua script gets them."""

    exposure: int  # CNY: windows opened in the period, at most this
    expected_loss: int  # CNY: their expected losses, at most this
    programme_budget: int = 0  # CNY: the programme's boosted parts at most this
    round_to: int = 100
    min_limit: int = 500
    pacing: bool = False
    elapsed: float = 0.0  # the share of the period gone by, 0 to 1
    slack: float = 0.0  # pace only when the forecast demand exceeds the room by more than this share
    demand: Demand = ()  # the period's forecast demand; none: no pacing


@dataclass(frozen=True, slots=True)
class WindowRequest:
    """Decide one application (or one re-decision) in the book: grant, supersede, record."""

    record: str  # the decision record's key: the application id, or the application id + '~r'
    customer: str
    segment: str
    decision_id: str
    application_id: str
    policy_version: str
    decided_at_ms: int
    budget: str  # the book key of the budget charged: the segment, or segment/period (see `book.budget_key`)
    offer: OfferTerms | None = None  # None: the rules closed the window
    category: str = ""  # of a closure by the rules
    reason: str = ""
    supersedes: bool = True  # False for a system closure: the customer's window stays as it was
    # A closure of an application that could not be read defers to a real decision of the same
    # application: when this record (the plain application id) is decided, its answer is returned.
    fallback_of: str = ""
    # A re-decision names the record it decides again: it supersedes only if no newer application of
    # the customer was decided since (its order is the original's sequence, not its own).
    redecides: str = ""
    region: str = ""
    channel: str = ""
    locale: str = DEFAULT_LOCALE
    partner: str = ""
    model_id: str = ""
    deferred_score: str = ""  # closed for maintenance: the score to decide again, as JSON
    deferred_until_ms: int = 0


@dataclass(frozen=True, slots=True)
class DrawRequest:
    """Draw on the customer's window now."""

    drawdown_id: str
    customer: str
    amount: int
    at_ms: int
    absolute_cap: int  # the regulatory cap per person in force now
    income_fraction: str  # the income rule in force now (repr): a tighter one caps the balance
    policy_version: str = ""


@dataclass(frozen=True, slots=True)
class RepayRequest:
    """Lower the customer's balance by what they paid back."""

    repayment_id: str
    customer: str
    amount: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class CloseRequest:
    """Close an open window by its record: an expiry or a pause (category strategy)."""

    record: str
    closure_id: str
    category: str
    reason: str
    trigger: str
    at_ms: int


# --- what the book answers and holds -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Posting:
    """The book's answer for one request."""

    fresh: bool  # False: this record was decided before (a redelivery or a duplicate)
    seq: int
    granted: int
    refusal: str | None
    programme_part: int
    available: int
    budget_bound: bool = False  # the segment budget, not a cap or the grade, set the limit
    expected_loss_fen: int = 0
    decided_at_ms: int = 0  # when the book first decided it: a rebuilt event uses that time
    stored_event: bytes | None = None
    published: bool = False
    conflict: bool = False  # the application id belongs to another customer's application: refused
    decided_as_read: bool = False  # an unreadable attempt of an application that was read and decided: nothing to do

    @classmethod
    def unposted(cls, *, conflict: bool) -> Posting:
        """A request the book did not post: its record is another customer's (`conflict`), or it is an
        unreadable attempt of an application read and decided after all (`decided_as_read`)."""
        return cls(
            fresh=False, seq=0, granted=0, refusal=None, programme_part=0, available=0, conflict=conflict, decided_as_read=not conflict
        )


@dataclass(slots=True, kw_only=True)
class Movement:
    """The book's answer to a drawdown or a repayment (and what it keeps of it, by its id)."""

    fresh: bool  # False: decided before, this is the first answer again
    customer: str
    amount: int
    approved: bool  # a repayment is always applied
    balance: int  # after it
    balance_seq: int
    available: int = 0  # what may still be drawn after it (drawdowns)
    limit: int = 0
    decision_id: str = ""
    application_id: str = ""
    category: str = ""  # of a refusal
    reason: str = ""
    window_reason: str = ""
    conflict: bool = False  # the id was another customer's: refused
    applied: int = 0  # of a repayment: what it took off the balance (never below zero)
    at: int = 0  # when it was decided (ms)
    repayment: bool = False
    policy_version: str = ""  # of a drawdown: the policy in force when it was decided

    @classmethod
    def conflicting(cls, customer: str, amount: int) -> Movement:
        """The answer to a drawdown or repayment whose id is another customer's: refused."""
        return cls(fresh=False, customer=customer, amount=amount, approved=False, balance=0, balance_seq=0, conflict=True)


@dataclass(slots=True)
class Balance:
    """What a customer owes, and its sequence (raised by every approved drawdown and repayment)."""

    balance: int = 0
    seq: int = 0


@dataclass(slots=True)
class Reserved:
    """A segment's reservations: exposure in CNY, expected loss in fen."""

    exposure: int = 0
    el_fen: int = 0


@dataclass(slots=True)
class DecisionRecord:
    """One decided record: what was granted and reserved, and the facts a later closure needs."""

    seq: int
    granted: int
    status: str  # open | closed | released
    customer: str
    segment: str
    decision_id: str
    application_id: str
    policy_version: str
    refusal: str = ""
    part: int = 0
    available: int = 0
    budget_bound: bool = False
    el_fen: int = 0
    programme: str = ""
    budget: str = ""  # the book key of the budget charged: the segment, or segment/period ("individual/2026-11")
    region: str = ""
    channel: str = ""
    locale: str = DEFAULT_LOCALE
    partner: str = ""
    model_id: str = ""
    decided_at: int = 0
    event: bytes | None = None
    published: bool = False
    deferred_score: str = ""
    closure_id: str = ""
    closure_seq: int = 0
    closure_category: str = ""
    closure_reason: str = ""
    closure_trigger: str = ""
    closure_at: int = 0


@dataclass(slots=True)
class WindowEntry:
    """A customer's current window: the latest decision that is about them (by sequence)."""

    status: str  # open | closed
    limit: int
    apr: str
    valid_until: int | None  # ms
    decision_id: str
    decision_seq: int
    policy_version: str
    record: str
    application_id: str
    segment: str
    category: str
    reason: str
    origin_seq: int = 0  # the order of the application behind it (a re-decision keeps its original's)
    income_fraction: str = ""  # the income rule the window was opened under (repr)


@dataclass(slots=True)
class BookState:
    """Everything the book holds. Redis holds the same, key by key; a rebuild derives it from the log."""

    budgets: dict[str, Reserved] = field(default_factory=dict)
    programmes: dict[str, int] = field(default_factory=dict)
    records: dict[str, DecisionRecord] = field(default_factory=dict)
    windows: dict[str, WindowEntry] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)
    expiry: dict[str, int] = field(default_factory=dict)  # open record -> valid_until ms
    open: set[str] = field(default_factory=set)
    closing: dict[str, int] = field(default_factory=dict)  # lifecycle closure not yet announced -> its seq
    deferred: dict[str, int] = field(default_factory=dict)  # maintenance closure -> when to decide again (ms)
    balances: dict[str, Balance] = field(default_factory=dict)  # customer -> what they owe
    movements: dict[str, Movement] = field(default_factory=dict)  # drawdown or repayment id -> its answer

    def comparable(self) -> dict[str, Any]:
        """What `creditwindow cache rebuild --check` compares: the book's money and windows, not its records."""
        return {
            "windows": {c: _plain(w) for c, w in self.windows.items()},
            "budgets": {s: _plain(r) for s, r in self.budgets.items() if r.exposure or r.el_fen},
            "programmes": {p: v for p, v in self.programmes.items() if v},
            "seqs": dict(self.seqs),
            "expiry": dict(self.expiry),
            "open": sorted(self.open),
            "balances": {c: _plain(b) for c, b in self.balances.items() if b.balance or b.seq},
        }


def _plain(value: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in fields(value)}


@dataclass(frozen=True, slots=True)
class LifecycleClosure:
    """A window closed by expiry or a pause, to be announced as `WindowClosed`."""

    record: str
    facts: DecisionRecord


@dataclass(frozen=True, slots=True)
class CurrentWindow:
    """A customer's current window as an operator or an upstream app reads it."""

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
    balance: int = 0
    available: int = 0

    @classmethod
    def of(cls, customer_id: str, entry: WindowEntry, balance: int = 0) -> CurrentWindow:
        return cls(
            customer_id=customer_id,
            status=entry.status,
            limit=entry.limit,
            apr=float(entry.apr) if entry.apr else None,
            valid_until=datetime.fromtimestamp(entry.valid_until / 1000, UTC) if entry.valid_until else None,
            decision_id=entry.decision_id,
            decision_seq=entry.decision_seq,
            policy_version=entry.policy_version,
            application_id=entry.application_id,
            segment=entry.segment,
            category=entry.category or None,
            reason=entry.reason or None,
            balance=balance,
            available=max(0, entry.limit - balance) if entry.status == "open" else 0,
        )

    @classmethod
    def owing(cls, customer_id: str, balance: int) -> CurrentWindow:
        """No window on record any more (its record outlived its retention) but a balance still owed:
        the customer is still told what they owe, and that nothing is available."""
        return cls(
            customer_id=customer_id, status="none", limit=0, apr=None, valid_until=None, decision_id="", decision_seq=0,
            policy_version="", application_id="", segment="", category=None, reason=None, balance=balance, available=0,
        )  # fmt: skip

    @classmethod
    def found(cls, customer_id: str, entry: WindowEntry | None, balance: int) -> CurrentWindow | None:
        """The window as read, a balance owed without one, or None (nothing on record)."""
        if entry is not None:
            return cls.of(customer_id, entry, balance)
        return cls.owing(customer_id, balance) if balance > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            f.name: (v.isoformat() if isinstance(v := getattr(self, f.name), datetime) else v) for f in fields(self)
        }
