"""What lending needs from outside: the book's drawdown, repayment and due-date rules (one ledger with the windows')."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from services.policy.windows.model import DrawRequest, Loan, LoanNotice, Movement, RepayRequest, Watched, WatchRequest

__all__ = ["LendingBook"]


class LendingBook(Protocol):
    """Drawing on a customer's window and paying back, and watching the loans' due dates, decided in the
    book (`Book.draw`, `Book.repay`, `Book.watch`)."""

    async def draw(self, requests: Sequence[DrawRequest]) -> list[Movement]:
        """Decide each drawdown atomically against the customer's window and balance, in order; book
        each approved one as a loan in the same step."""
        ...

    async def repay(self, requests: Sequence[RepayRequest]) -> list[Movement]:
        """Allocate each repayment atomically to the customer's instalments, in order (a surplus: credit)."""
        ...

    async def loans(self, loan_ids: Collection[str]) -> dict[str, Loan]:
        """The loans by id (those on record)."""
        ...

    async def watch(self, request: WatchRequest) -> Watched:
        """Record each due-date step that has come, once, atomically; returns the notices recorded now."""
        ...

    async def pending_notices(self, recorded_before_ms: int, limit: int = 200) -> list[LoanNotice]:
        """Notices recorded before `recorded_before_ms` and still not published (their replica stopped), in order."""
        ...

    async def notices_published(self, notice_ids: Sequence[str]) -> None: ...
