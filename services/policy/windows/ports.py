"""What deciding windows needs from outside: the book by job, customer care's suspensions, the index.

The book is one ledger (`book.py`; in Redis `adapters/redis_book.py`, in memory
`adapters/memory_book.py`), reached through a port per job: `DecisionBook` to decide, `LifecycleBook`
to expire, close and decide again, `BookReader` to read; lending draws on it through
`lending.ports.LendingBook`. A shadow replica reads the fleet's book through `LiveBook` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from services.policy.windows.model import (
    BudgetTerms,
    CloseRequest,
    CurrentWindow,
    DecisionRecord,
    LifecycleClosure,
    Posting,
    Reserved,
    WindowRequest,
)
from shared.contracts import Decision

__all__ = [
    "BookReader",
    "DecisionBook",
    "DecisionIndex",
    "LifecycleBook",
    "LiveBook",
    "Suspension",
    "Suspensions",
    "WindowBook",
]


class DecisionBook(Protocol):
    """Deciding: each request put to the book once, its decision kept until it is published."""

    async def post(self, requests: Sequence[WindowRequest], budgets: Mapping[str, BudgetTerms]) -> list[Posting]:
        """Decide each request atomically and in order (budget, sequence, superseding, idempotency);
        `budgets` holds the terms of each budget the requests name (by book key)."""
        ...

    async def remember(self, decisions: Sequence[tuple[str, bytes]]) -> None:
        """Keep each record's decision event (if none is kept yet), so a redelivery republishes the same bytes.

        Returns once the book's writes so far are durable (with a replica: they reached it), since
        what it decided is published next."""
        ...

    async def mark_published(self, records: Sequence[str]) -> None: ...


class BookReader(Protocol):
    """Reading the book: a customer's current window, a decision record, the budgets' reservations."""

    async def current(self, customer_id: str) -> CurrentWindow | None: ...

    async def record(self, record: str) -> DecisionRecord | None: ...

    async def budgets(self, keys: Sequence[str]) -> dict[str, Reserved]:
        """Reserved per budget (book keys: segment, or segment/period); budgets never reserved are absent."""
        ...

    async def programmes(self, names: Sequence[str]) -> dict[str, int]: ...

    async def usable(self) -> bool:
        """Whether the book is still the one this process works on (False starts its recovery)."""
        ...


class LifecycleBook(Protocol):
    """A window's life after its decision: expiry, pauses and suspensions close it, maintenance defers it."""

    async def due_expiries(self, now: datetime, limit: int = 200) -> list[str]: ...

    async def open_records(self) -> list[str]: ...

    async def open_record(self, customer_id: str) -> str | None:
        """The record of the customer's current window if it is open (a suspension closes it)."""
        ...

    async def close(self, request: CloseRequest) -> LifecycleClosure | None:
        """Close an open window and release its budget; None if it was not open."""
        ...

    async def pending_closures(self, limit: int = 200) -> list[LifecycleClosure]: ...

    async def closure_published(self, records: Sequence[str]) -> None: ...

    async def due_deferred(self, now: datetime, limit: int = 200) -> list[tuple[str, bytes]]:
        """Records closed for maintenance whose time to be decided again has come, with their scores."""
        ...

    async def redecided(self, records: Sequence[str]) -> None: ...


class WindowBook(DecisionBook, LifecycleBook, BookReader, Protocol):
    """What the underwriter keeps in the book: its decisions, their lifecycle, and what it reads back."""


class LiveBook(Protocol):
    """A read-only view of the fleet's book: what a shadow replica starts from."""

    async def budgets(self, keys: Sequence[str]) -> dict[str, Reserved]: ...

    async def programmes(self, names: Sequence[str]) -> dict[str, int]: ...

    async def open_window(self, customer_id: str) -> DecisionRecord | None:
        """The record of the customer's current window if it is open."""
        ...


@dataclass(frozen=True, slots=True)
class Suspension:
    """A customer's right to apply, suspended by an operator (signed), until `until` or lifted."""

    customer_id: str
    reason: str
    since: datetime
    until: datetime | None
    issued_by: str

    def active(self, now: datetime) -> bool:
        return self.since <= now and (self.until is None or now < self.until)


class Suspensions(Protocol):
    """Customer care's suspensions, as the rules and the lifecycle read them (`care.desk.CustomerDesk`)."""

    def suspension(self, customer_id: str, now: datetime) -> Suspension | None:
        """The customer's suspension if it holds at `now`."""
        ...

    def suspended_until(self, customer_id: str) -> datetime | None:
        """When the customer's suspension ends by itself (None: none, or until lifted)."""
        ...


class DecisionIndex(Protocol):
    """Where each decision is on the log, written before it is published (`record.ports.ReferenceIndex`)."""

    async def record(self, decisions: Sequence[Decision]) -> None: ...
