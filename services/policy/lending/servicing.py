"""The servicer: each loan's due dates watched, on the sweeper's tick and the injected clock.

Each tick the book records, atomically and once, every due-date step that has come (`Book.watch`): a
reminder before an instalment's due date, and each days-past-due step the policy names after it,
the first being the miss itself; a sweep after a long outage records each missed step once, in
order. At the step the policy names (`close_window_at_days`) the customer's open window is closed
first (credit, `own_overdue`, announced on `credit.windows`), so the notice that says so is true
when it is read. Then the notices are published on `credit.loans` and marked published. A notice
recorded by a replica that stopped before publishing it is published by whichever replica finds it
a while later (`REPUBLISH_AFTER`), with the same id and time: the book remembers what it recorded,
so a restart or a second replica never tells a step twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog

from services.policy.control.state import PolicyState
from services.policy.lending.loan_events import step_event
from services.policy.lending.ports import LendingBook
from services.policy.windows.model import WatchRequest
from services.policy.windows.underwriting import Underwriter
from shared.clock import Clock
from shared.contracts import InstalmentDueSoon, InstalmentOverdue, WindowClosed
from shared.ports import EventPublisher

__all__ = ["REPUBLISH_AFTER", "Serviced", "Servicer"]

log = structlog.get_logger("creditwindow.policy")

# A notice still unpublished this long after it was recorded was left by a replica that stopped.
REPUBLISH_AFTER = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Serviced:
    """What a tick told: the due-date notices published, and the windows closed for overdue."""

    notices: list[InstalmentDueSoon | InstalmentOverdue]
    closures: list[WindowClosed]


@dataclass(slots=True, kw_only=True)
class Servicer:
    """Watches the loans' due dates in the book, closes the windows of customers overdue, tells each step."""

    store: LendingBook
    windows: Underwriter
    publisher: EventPublisher
    out_topic: str
    state: PolicyState
    clock: Clock

    async def watch(self) -> Serviced:
        lending = self.state.active.lending
        now = self.clock.now()
        now_ms = int(now.timestamp() * 1000)
        request = WatchRequest(now_ms, lending.remind_before_days, lending.overdue_steps_days, lending.close_window_at_days)
        recorded = (await self.store.watch(request)).notices
        left = await self.store.pending_notices(now_ms - int(REPUBLISH_AFTER.total_seconds() * 1000))
        pending = list({n.notice_id: n for n in sorted([*left, *recorded], key=lambda n: n.seq)}.values())
        if not pending:
            return Serviced([], [])
        loans = await self.store.loans({n.loan_id for n in pending})
        closures: list[WindowClosed] = []
        for customer in dict.fromkeys(n.customer for n in pending if n.closes_window):
            closures += await self.windows.close_overdue(customer)
        notices = [step_event(n, loans[n.loan_id]) for n in pending]
        await self.publisher.publish((self.out_topic, e) for e in notices)
        await self.store.notices_published([n.notice_id for n in pending])
        log.info(
            "due_dates_told", reminders=sum(1 for n in pending if n.step == 0), overdue=sum(1 for n in pending if n.step > 0),
            windows_closed=len(closures), left_by_another=len(left),
        )  # fmt: skip
        return Serviced(notices, closures)
