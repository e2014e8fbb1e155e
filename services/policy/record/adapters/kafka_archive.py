"""The decision log read back from Kafka: a decision by its reference, its score, what the customer was told.

Every read is of one partition (the customer's: every fleet topic is keyed by customer) from the
time the index says (`ReferenceIndex`), so finding a decision costs a few records, not a scan:

- the decision: on `credit.windows`, from a minute before it was decided or published;
- its score: on `credit.scores` (kept as long as the decisions, for this), before the decision,
  looking back further and further (a score waits minutes in an outage, days for a maintenance
  re-decision); a decision made on review, or a lifecycle closure, is explained with the score of
  the decision it reviewed or closed;
- the message as sent: the inbox `NotificationSent` on `credit.notifications` (kept as long as the
  decisions), after the decision.
"""

from __future__ import annotations

from datetime import timedelta

from services.policy.record.ports import ReferenceIndex
from shared.contracts import Decision, NotificationSent, ScoreComputed, WindowClosed
from shared.messaging.topic_io import ReadRecord, scan_key
from shared.references import reference_of
from shared.settings import Settings

__all__ = ["KafkaArchive"]

_MINUTE_MS = 60_000
_LATE_MS = 10 * _MINUTE_MS  # a decision is published within its batch's retries
_LOOKBACKS = (timedelta(minutes=10), timedelta(days=1), timedelta(days=30), None)
_TOLD_WITHIN_MS = 24 * 3600 * 1000


def _ms(decision: Decision) -> int:
    return int(decision.occurred_at.timestamp() * 1000)


class KafkaArchive:
    def __init__(self, settings: Settings, references: ReferenceIndex) -> None:
        self.settings = settings
        self.references = references

    async def decision(self, reference: str) -> Decision | None:
        entry = await self.references.find(reference)
        if entry is None:
            return None
        until = max(entry.decided_at_ms, entry.published_at_ms) + _LATE_MS

        def found(r: ReadRecord) -> bool:
            return isinstance(r.event, Decision) and reference_of(r.event.decision_id) == reference

        records = await scan_key(
            self.settings, self.settings.topics.windows, entry.customer_id,
            since_ms=min(entry.decided_at_ms, entry.published_at_ms) - _MINUTE_MS,
            stop=lambda r: found(r) or r.timestamp_ms > until,
        )  # fmt: skip
        return next((r.event for r in records if found(r)), None)  # type: ignore[misc]

    async def score(self, decision: Decision) -> ScoreComputed | None:
        if decision.trigger == "review" and decision.reviewed_decision_id is not None:
            reviewed = await self.decision(reference_of(decision.reviewed_decision_id))
            return await self.score(reviewed) if reviewed is not None else None
        if isinstance(decision, WindowClosed) and decision.closes_decision_id is not None:
            closed = await self.decision(reference_of(decision.closes_decision_id))
            return await self.score(closed) if closed is not None else None
        if decision.causation_id is None:
            return None
        decided = _ms(decision)

        def found(r: ReadRecord) -> bool:
            return isinstance(r.event, ScoreComputed) and r.event.event_id == decision.causation_id

        for lookback in _LOOKBACKS:
            since = decided - int(lookback.total_seconds() * 1000) if lookback is not None else 0
            records = await scan_key(
                self.settings, self.settings.topics.scores, decision.customer_id, since_ms=since,
                stop=lambda r: found(r) or r.timestamp_ms > decided + _MINUTE_MS, timeout_s=120,
            )  # fmt: skip
            match = next((r.event for r in records if found(r)), None)
            if match is not None:
                return match  # type: ignore[return-value]
        return None

    async def notices(self, decision: Decision) -> list[NotificationSent]:
        decided = _ms(decision)

        def found(r: ReadRecord) -> bool:
            e = r.event
            return isinstance(e, NotificationSent) and e.decision_id == decision.decision_id and e.channel == "inbox" and e.about == "decision"

        records = await scan_key(
            self.settings, self.settings.topics.notifications, decision.customer_id, since_ms=decided - _MINUTE_MS,
            stop=lambda r: found(r) or r.timestamp_ms > decided + _TOLD_WITHIN_MS,
        )  # fmt: skip
        return [r.event for r in records if found(r)]  # type: ignore[misc]
