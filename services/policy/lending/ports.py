"""What lending needs from outside: the book's drawdown and repayment rules (one ledger with the windows')."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from services.policy.windows.model import DrawRequest, Movement, RepayRequest

__all__ = ["LendingBook"]


class LendingBook(Protocol):
    """Drawing on a customer's window and paying back, decided in the book (`Book.draw`, `Book.repay`)."""

    async def draw(self, requests: Sequence[DrawRequest]) -> list[Movement]:
        """Decide each drawdown atomically against the customer's window and balance, in order."""
        ...

    async def repay(self, requests: Sequence[RepayRequest]) -> list[Movement]:
        """Apply each repayment atomically, in order (never below zero)."""
        ...
