"""Telling customers, once, that an outage delays their decision (the rule: `delays.py`).

While a batch of scores cannot be decided (Redis or the broker away) it is retried; between the
tries, `DelayNotices.waiting(scores)` tells each customer whose application has waited longer than
the policy's `customer_care.delay_notice_after` (a `retries.Meanwhile`: the handler hands it to
the retry). A notice the broker cannot take either is told on the next try.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog

from services.policy.care.delays import DelayWatch
from services.policy.control.state import PolicyState
from shared.clock import Clock
from shared.contracts import ScoreComputed
from shared.logging import event_ids
from shared.ports import EventPublisher

__all__ = ["DelayNotices", "Waiting"]

log = structlog.get_logger("creditwindow.policy")


@dataclass(slots=True, kw_only=True)
class DelayNotices:
    """Tells each delayed customer once (this process), through the publisher, on the decisions' topic."""

    publisher: EventPublisher
    out_topic: str
    state: PolicyState
    clock: Clock
    watch: DelayWatch = field(default_factory=DelayWatch)
    counted: Callable[[int], None] = lambda told: None  # how many were told (the metric)

    def waiting(self, scores: Sequence[ScoreComputed]) -> Waiting:
        """What to do while `scores` wait for their decisions."""
        return Waiting(self, scores)

    async def tell(self, scores: Sequence[ScoreComputed], cause: str) -> None:
        notices = self.watch.due(scores, self.clock.now(), self.state.active.customer_care.delay_notice_after, cause)
        if not notices:
            return
        try:
            await self.publisher.publish((self.out_topic, n) for n in notices)
        except Exception as exc:  # the broker may be away too: told on the next try
            log.warning("decision_delay_not_told", applications=len(notices), error=repr(exc)[:300])
            return
        self.watch.told(notices)
        self.counted(len(notices))
        for notice in notices:
            log.warning("decision_delayed", **event_ids(notice), waiting_since=notice.waiting_since.isoformat(), cause=notice.cause)


class Waiting:
    """A batch's scores waiting for their decisions: when the next customer is due a notice, and telling them."""

    def __init__(self, notices: DelayNotices, scores: Sequence[ScoreComputed]) -> None:
        self.notices = notices
        self.scores = scores

    def due_in_s(self) -> float | None:
        n = self.notices
        return n.watch.next_due_s(self.scores, n.clock.now(), n.state.active.customer_care.delay_notice_after)

    async def __call__(self, fault: BaseException) -> None:
        await self.notices.tell(self.scores, f"{type(fault).__name__}: {fault}")
