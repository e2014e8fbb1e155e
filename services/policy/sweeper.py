"""The policy service's sweeper: once a second, the windows' lifecycle and the gauges read from state.

Each tick: expire windows, close those of pauses come in force, decide again what maintenance
deferred, announce closures (`Underwriter.sweep`); then refresh the budget gauges (this period's
reservations against each segment's budget) and customer care's (open, overdue reviews; customers
suspended). A tick that fails is logged and tried again on the next: the sweeper outlives any fault.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from services.policy.care.desk import CustomerDesk
from services.policy.control.state import PolicyState
from services.policy.metrics import PolicyMetrics
from services.policy.windows.decisions import budgets_now
from services.policy.windows.model import Reserved
from services.policy.windows.ports import BookReader
from services.policy.windows.underwriting import Underwriter
from shared.messaging import is_transient

__all__ = ["SWEEP_INTERVAL_S", "Sweeper"]

log = structlog.get_logger("creditwindow.policy")
SWEEP_INTERVAL_S = 1.0


@dataclass(slots=True, kw_only=True)
class Sweeper:
    underwriter: Underwriter
    book: BookReader
    state: PolicyState
    metrics: PolicyMetrics
    desk: CustomerDesk | None = None  # customer care's gauges (none: a replica without a desk)
    interval_s: float = SWEEP_INTERVAL_S

    async def forever(self) -> None:
        while True:
            try:
                if await self.book.usable():  # not while recovery rebuilds the book
                    await self.tick()
            except Exception as exc:  # the sweeper must outlive any fault; it retries next tick
                log.warning("sweep_failed", error=repr(exc)[:300], transient=is_transient(exc))
            await asyncio.sleep(self.interval_s)

    async def tick(self) -> None:
        self.metrics.observe(await self.underwriter.sweep())
        now = self.underwriter.clock.now()
        if self.desk is not None:
            self.metrics.observe_care(
                open_reviews=len(self.desk.reviews),
                overdue=len(self.desk.overdue(now, self.state.active.customer_care.review_within)),
                suspended=sum(1 for s in self.desk.suspensions.values() if s.active(now)),
            )
        terms = budgets_now(self.state.active, now)  # this period's budgets
        reserved = await self.book.budgets([key for key, _ in terms.values()])
        for segment, (key, budget) in terms.items():
            self.metrics.observe_budget(segment, reserved.get(key, Reserved()).exposure, budget.exposure)
