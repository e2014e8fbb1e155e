"""The portfolio book in this process's memory: `WindowBook` and `LendingBook` over `book.Book`.

A shadow replica decides with it, so a candidate policy never writes the fleet's Redis: seeded once,
read-only, from the live book (reservations per segment and programme), it releases a customer's live
window in its own book when that customer applies again, as the live store would. Handler tests use
it with no live book at all: the same ledger rules as production, in memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from copy import copy
from datetime import datetime

from services.policy.windows.book import Book
from services.policy.windows.model import (
    Balance,
    BudgetTerms,
    CloseRequest,
    CurrentWindow,
    DecisionRecord,
    DrawRequest,
    LifecycleClosure,
    Movement,
    Posting,
    RepayRequest,
    Reserved,
    WindowRequest,
)
from services.policy.windows.ports import LiveBook

__all__ = ["MemoryBook"]


# An offer in a budget the batch did not name has nothing to be granted from.
_NO_BUDGET = BudgetTerms(exposure=0, expected_loss=0)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class MemoryBook:
    """The book in memory; with `live`, seeded from (and never writing) the fleet's book."""

    def __init__(self, live: LiveBook | None = None, *, programmes: Sequence[str] = ()) -> None:
        self.book = Book()
        self._live = live
        self._programme_names = tuple(programmes)
        self._seeded: set[str] = set()  # budgets (and "programmes") copied from the live book
        self._live_checked: set[str] = set()

    async def _seed(self, keys: Sequence[str]) -> None:
        # Each budget is copied from the live book when first met (a new period's too), once.
        if self._live is None:
            return
        missing = [key for key in keys if key not in self._seeded]
        if missing:
            for key, reserved in (await self._live.budgets(missing)).items():
                self.book.state.budgets[key] = Reserved(reserved.exposure, reserved.el_fen)
            self._seeded.update(missing)
        if "programmes" not in self._seeded:
            self.book.state.programmes.update(await self._live.programmes(self._programme_names))
            self._seeded.add("programmes")

    async def post(self, requests: Sequence[WindowRequest], budgets: Mapping[str, BudgetTerms]) -> list[Posting]:
        await self._seed(list(budgets))
        answers = []
        for request in requests:
            known = request.customer in self.book.state.windows
            answer = self.book.post(request, budgets.get(request.budget, _NO_BUDGET))
            answers.append(answer)
            if self._live is not None and answer.fresh and request.supersedes and not known:
                await self._release_live(request.customer)
        return answers

    async def _release_live(self, customer: str) -> None:
        # The customer's live window is superseded in this book too (after the new grant, as the store does).
        if customer in self._live_checked or self._live is None:
            return
        self._live_checked.add(customer)
        live = await self._live.open_window(customer)
        if live is not None:
            self.book.reserve(
                live.budget or live.segment, live.granted, live.el_fen, live.programme, live.part, sign=-1
            )

    async def remember(self, decisions: Sequence[tuple[str, bytes]]) -> None:
        for record, payload in decisions:
            self.book.remember(record, payload)

    async def mark_published(self, records: Sequence[str]) -> None:
        for record in records:
            self.book.mark_published(record)

    async def due_expiries(self, now: datetime, limit: int = 200) -> list[str]:
        return self.book.due_expiries(_ms(now), limit)

    async def open_records(self) -> list[str]:
        return sorted(self.book.state.open)

    async def record(self, record: str) -> DecisionRecord | None:
        entry = self.book.state.records.get(record)
        return copy(entry) if entry is not None else None

    async def close(self, request: CloseRequest) -> LifecycleClosure | None:
        if self.book.close(request) is None:
            return None
        return LifecycleClosure(request.record, copy(self.book.state.records[request.record]))

    async def pending_closures(self, limit: int = 200) -> list[LifecycleClosure]:
        return [LifecycleClosure(r, copy(self.book.state.records[r])) for r in self.book.pending_closures(limit)]

    async def closure_published(self, records: Sequence[str]) -> None:
        for record in records:
            self.book.closure_published(record)

    async def due_deferred(self, now: datetime, limit: int = 200) -> list[tuple[str, bytes]]:
        return self.book.due_deferred(_ms(now), limit)

    async def redecided(self, records: Sequence[str]) -> None:
        for record in records:
            self.book.redecided(record)

    async def current(self, customer_id: str) -> CurrentWindow | None:
        entry = self.book.state.windows.get(customer_id)
        balance = self.book.state.balances.get(customer_id, Balance()).balance
        return CurrentWindow.found(customer_id, entry, balance)

    async def budgets(self, keys: Sequence[str]) -> dict[str, Reserved]:
        budgets = self.book.state.budgets
        return {k: Reserved(budgets[k].exposure, budgets[k].el_fen) for k in keys if k in budgets}

    async def draw(self, requests: Sequence[DrawRequest]) -> list[Movement]:
        return [self.book.draw(r) for r in requests]

    async def repay(self, requests: Sequence[RepayRequest]) -> list[Movement]:
        return [self.book.repay(r) for r in requests]

    async def usable(self) -> bool:
        return True  # this process's own memory: never lost under it

    async def open_record(self, customer_id: str) -> str | None:
        entry = self.book.state.windows.get(customer_id)
        return entry.record if entry is not None and entry.status == "open" else None

    async def programmes(self, names: Sequence[str]) -> dict[str, int]:
        return {n: self.book.state.programmes[n] for n in names if n in self.book.state.programmes}
