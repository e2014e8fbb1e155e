"""The customer desk: each customer's suspension and the reviews under way, as `credit.reviews` says. Pure.

Every policy replica keeps a desk in memory, restored from `credit.reviews` at start (kept forever)
and followed live, the way the policy document is: suspensions are read when a score is decided,
open reviews are counted for the overdue metric. Only verified operator actions reach it (see
`control.check_action`), and each customer's actions take effect in the order they were issued, so
an old action replayed changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.policy.windows.ports import Suspension
from shared.contracts import DEFAULT_LOCALE, CustomerSuspended, ReviewConcluded, ReviewOpened, SuspensionLifted

__all__ = ["CustomerDesk", "OpenReview"]


@dataclass(frozen=True, slots=True)
class OpenReview:
    review_id: uuid.UUID
    reference: str
    customer_id: str
    decision_id: uuid.UUID
    requested_at: datetime
    locale: str = DEFAULT_LOCALE  # the language the customer asked in: the outcome is told in it


class CustomerDesk:
    """Suspensions by customer and the open reviews; `history_end` marks what was read at start."""

    def __init__(self) -> None:
        self.suspensions: dict[str, Suspension] = {}
        self.reviews: dict[uuid.UUID, OpenReview] = {}
        self.history_end: dict[int, int] = {}
        self._last_action: dict[str, datetime] = {}
        self._concluded: set[uuid.UUID] = set()

    def _in_order(self, customer: str, issued_at: datetime) -> bool:
        last = self._last_action.get(customer)
        if last is not None and issued_at <= last:
            return False
        self._last_action[customer] = issued_at
        return True

    def suspend(self, action: CustomerSuspended) -> Suspension | None:
        """Apply a suspension; the suspension when it took effect, None when an older action (a replay)."""
        if not self._in_order(action.customer_id, action.issued_at):
            return None
        suspension = Suspension(action.customer_id, action.reason, action.issued_at, action.until, action.issued_by)
        self.suspensions[action.customer_id] = suspension
        return suspension

    def lift(self, action: SuspensionLifted) -> bool:
        """Lift a suspension; False when there was none or the action is older than the last one."""
        if not self._in_order(action.customer_id, action.issued_at):
            return False
        return self.suspensions.pop(action.customer_id, None) is not None

    def suspension(self, customer_id: str, now: datetime) -> Suspension | None:
        """The customer's suspension if it holds at `now`."""
        found = self.suspensions.get(customer_id)
        return found if found is not None and found.active(now) else None

    def suspended_until(self, customer_id: str) -> datetime | None:
        """When the customer's suspension ends by itself (None: none, or until lifted)."""
        found = self.suspensions.get(customer_id)
        return found.until if found is not None else None

    def opened(self, event: ReviewOpened) -> None:
        if event.review_id not in self._concluded:
            self.reviews.setdefault(
                event.review_id,
                OpenReview(event.review_id, event.reference, event.customer_id, event.decision_id, event.requested_at, event.locale),
            )

    def concluded(self, event: ReviewConcluded) -> None:
        self._concluded.add(event.review_id)
        self.reviews.pop(event.review_id, None)

    def is_concluded(self, review_id: uuid.UUID) -> bool:
        return review_id in self._concluded

    def overdue(self, now: datetime, within: timedelta) -> list[OpenReview]:
        """Open reviews requested longer than `within` ago, the oldest first."""
        return sorted((r for r in self.reviews.values() if now - r.requested_at > within), key=lambda r: r.requested_at)
