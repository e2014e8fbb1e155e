"""The portfolio book's data model: what it is asked, what it answers, what it holds. Plain values.

The book's rules (`book.py`), its Lua twin (`adapters/redis_book.py`) and its memory store
(`adapters/memory_book.py`) speak these; the ports the rooms reach the book through are in
`windows/ports.py` and `lending/ports.py`.

Money: limits and exposure are whole CNY (a limit is a multiple of `round_to`); expected loss, loans,
interest and repayments are integer fen, rounded by the one rule of `loans.fen`, so every sum in the
book is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from shared.contracts import DEFAULT_LOCALE

__all__ = [
    "Posting",
    "Allocation",
    "Balance",
    "BookState",
    "BudgetTerms",
    "CloseRequest",
    "CurrentWindow",
    "WindowRequest",
    "DecisionRecord",
    "Demand",
    "DrawRequest",
    "Episode",
    "InstalmentState",
    "LifecycleClosure",
    "Loan",
    "LoanNotice",
    "Movement",
    "OfferTerms",
    "RepayRequest",
    "Reserved",
    "WatchRequest",
    "Watched",
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
    """Draw on the customer's window now, and book the loan it becomes.

    The loan's calendar comes with it (`lending.calendar`): its days are `day_ms` long, counted from
    UTC + `offset_ms` (China time), and its instalments fall due on `due_days` (one per month of the
    term). `term` 0: the term asked for is not offered (refused).
    """

    drawdown_id: str
    customer: str
    amount: int
    at_ms: int
    absolute_cap: int  # the regulatory cap per person in force now
    income_fraction: str  # the income rule in force now (repr): a tighter one caps the balance
    policy_version: str = ""
    term: int = 1
    due_days: tuple[int, ...] = ()
    day_ms: int = 86_400_000
    offset_ms: int = 28_800_000
    interval: str = "P1M"
    close_at_days: int = 1  # a customer this many days past due is refused (own_overdue)
    remind_days: int = 3  # the first reminder comes this many days before the first due date
    locale: str = DEFAULT_LOCALE


@dataclass(frozen=True, slots=True)
class RepayRequest:
    """Lower the customer's balance by what they paid back."""

    repayment_id: str
    customer: str
    amount: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class WatchRequest:
    """Watch the loans whose next due-date step has come by `now_ms`: tell each step once, in order."""

    now_ms: int
    remind_days: int
    steps: tuple[int, ...]  # days past due told, ascending, 1 first
    close_at_days: int  # the step at which the customer's window closes
    limit: int = 200  # loans per call


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
    applied: int = 0  # of a repayment: what it paid of what was owed, whole CNY rounded down
    at: int = 0  # when it was decided (ms)
    repayment: bool = False
    policy_version: str = ""  # of a drawdown: the policy in force when it was decided
    partner: str = ""  # of a drawdown: the partner of the window drawn on
    loan_id: str = ""  # of an approved drawdown: the loan booked
    # of a repayment, in fen: what it paid of interest and of principal, what went to the credit
    # balance, the credit balance and the principal outstanding after it, and instalment by instalment
    interest_fen: int = 0
    principal_fen: int = 0
    credit_fen: int = 0
    credit_balance_fen: int = 0
    balance_fen: int = 0
    allocations: tuple[Allocation, ...] = ()
    # of a repayment that brought an overdue customer back to current: the worst days past due of the
    # instalments it cured (0: no cure), the day it was cured in their loan's calendar, and the loans
    cured_days: int = 0
    cured_day: int = 0
    cured_day_ms: int = 0
    cured_offset_ms: int = 0
    cured_loans: tuple[str, ...] = ()

    @classmethod
    def conflicting(cls, customer: str, amount: int) -> Movement:
        """The answer to a drawdown or repayment whose id is another customer's: refused."""
        return cls(fresh=False, customer=customer, amount=amount, approved=False, balance=0, balance_seq=0, conflict=True)


@dataclass(frozen=True, slots=True)
class Allocation:
    """What a repayment paid of one instalment (fen): its interest, then its principal."""

    loan_id: str
    instalment: int  # 1 for the first
    interest: int
    principal: int
    due: bool  # it was due when paid (else paid early)


@dataclass(slots=True)
class Balance:
    """What a customer owes, and its sequence (raised by every approved drawdown and repayment).

    `balance` is what the window counts: the principal outstanding in CNY, rounded up to the yuan
    (`principal_fen` exactly). `credit_fen` is what they paid beyond all they owed: their next
    drawdown uses it.
    """

    balance: int = 0
    seq: int = 0
    principal_fen: int = 0
    credit_fen: int = 0


@dataclass(slots=True)
class InstalmentState:
    """One instalment of a loan as the book keeps it (fen; days in the loan's calendar)."""

    due: int  # the day it is due
    principal: int  # its part of the principal, as scheduled
    planned_interest: int  # its interest as scheduled (paid on every due date)
    interest: int = 0  # interest accrued into it so far: by the day, on the principal outstanding
    interest_paid: int = 0
    principal_paid: int = 0
    step: int = -1  # the last due-date step told: 0 the reminder, n days past due; -1 none

    @property
    def left(self) -> int:
        """What is left to pay of it, of what has accrued so far."""
        return self.interest - self.interest_paid + self.principal - self.principal_paid


@dataclass(slots=True)
class Loan:
    """An approved drawdown as a loan: its terms (as booked) and its state (as paid)."""

    loan_id: str  # the drawdown's id
    customer: str
    principal: int  # fen lent
    outstanding: int  # fen of principal still owed
    apr: str  # the window's APR (repr)
    start_day: int  # the day it was booked
    since_day: int  # interest has accrued up to (not including) this day
    day_ms: int
    offset_ms: int
    booked_ms: int
    credit_used: int  # fen of the customer's credit balance the drawdown used
    amount: int  # CNY drawn
    interval: str
    partner: str
    application_id: str
    decision_id: str
    locale: str
    policy_version: str
    balance_seq: int
    instalments: list[InstalmentState] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Episode:
    """An overdue cured: an instalment paid after its due date, and how many days past due it reached."""

    loan_id: str
    instalment: int
    days: int  # days past due when cured
    cured_day: int  # in its loan's calendar
    day_ms: int
    offset_ms: int


@dataclass(frozen=True, slots=True)
class LoanNotice:
    """A due-date step recorded by the book and not yet published: a reminder (step 0) or days past due."""

    notice_id: str  # loan|instalment|step: the event's id is derived from it
    seq: int  # publication order
    loan_id: str
    customer: str
    instalment: int
    step: int
    due: int  # the due day
    pay_by_ms: int  # the end of the due day
    amount_due: int  # fen left to pay of the instalment
    at_ms: int  # when the sweep recorded it
    closes_window: bool
    close_at_days: int  # the step at which a window closes, as the policy said when it was recorded
    day_ms: int
    offset_ms: int


@dataclass(frozen=True, slots=True)
class Watched:
    """What a watch did: the notices it recorded (to publish, in order)."""

    notices: list[LoanNotice]


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
    loans: dict[str, Loan] = field(default_factory=dict)  # loan id -> the loan
    active: dict[str, list[str]] = field(default_factory=dict)  # customer -> loans not yet settled, as booked
    watch: dict[str, int] = field(default_factory=dict)  # loan id -> when its next due-date step comes (ms)
    episodes: dict[str, list[Episode]] = field(default_factory=dict)  # customer -> overdues cured (their own record)
    notices: dict[str, LoanNotice] = field(default_factory=dict)  # due-date steps recorded, not yet published
    notice_seq: int = 0

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
            "loans": {i: _plain(loan) for i, loan in self.loans.items()},
            "active": {c: list(ids) for c, ids in self.active.items() if ids},
            "episodes": {c: [_plain(e) for e in es] for c, es in self.episodes.items() if es},
        }


def _plain(value: Any) -> dict[str, Any]:
    return {f.name: _value(getattr(value, f.name)) for f in fields(value)}


def _value(value: Any) -> Any:
    if isinstance(value, list):
        return [_value(v) for v in value]
    return _plain(value) if hasattr(value, "__dataclass_fields__") else value


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
