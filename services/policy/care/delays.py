"""Outages the customer can see (服务器宕机、网络异常): one notice when a decision waits too long. Pure.

When Redis or the broker is away, an application cannot be decided: its batch is retried and
waits on Kafka (fail closed). Once an application has waited longer than the policy's
`customer_care.delay_notice_after`, its customer is told, once, that it is a technical problem and
not their credit, and that it will be decided as soon as it clears (`DecisionDelayed`, a `system`
notice, not a decision); exactly one decision follows when it clears.

The notice's id is derived from the application, so a retry, a restart or another replica makes
the same notice, and whoever tells it keeps it to one. `DelayWatch` keeps the applications this
process has already noticed, so a batch retried for minutes is announced once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from services.policy import PRODUCER
from services.policy.windows.decisions import decision_id_for, record_key, unreadable
from shared.contracts import DEFAULT_LOCALE, DecisionDelayed, ScoreComputed

__all__ = ["DelayWatch", "delay_notice"]

_REMEMBERED = 100_000


def delay_notice(score: ScoreComputed, now: datetime, cause: str) -> DecisionDelayed:
    """The notice that `score`'s application waits for its decision (its id: the application's)."""
    facts = score.facts
    decision_id = decision_id_for(record_key(score.application_id, "application", unreadable=unreadable(score)))
    return DecisionDelayed.caused_by(
        score,
        key=("delayed", score.application_id),
        producer=PRODUCER,
        occurred_at=now,
        correlation_id=score.application_id,
        application_id=score.application_id,
        customer_id=score.customer_id,
        decision_id=decision_id,
        locale=facts.locale if facts else DEFAULT_LOCALE,
        segment=facts.segment if facts else None,
        partner_id=facts.partner_id if facts else None,
        waiting_since=score.occurred_at,
        cause=cause[:200],
    )


class DelayWatch:
    """Which applications this process has told about a delay (bounded: the oldest are forgotten)."""

    def __init__(self) -> None:
        self._told: dict[str, None] = {}

    def due(self, scores: Iterable[ScoreComputed], now: datetime, bound: timedelta, cause: str) -> list[DecisionDelayed]:
        """Notices for the applications that have waited longer than `bound` and were not told yet."""
        return [
            delay_notice(score, now, cause)
            for score in scores
            if score.application_id not in self._told and now - score.occurred_at >= bound
        ]

    def next_due_s(self, scores: Iterable[ScoreComputed], now: datetime, bound: timedelta) -> float | None:
        """Seconds until the next application not told yet has waited `bound` (None: all told)."""
        waits = [(score.occurred_at + bound - now).total_seconds() for score in scores if score.application_id not in self._told]
        return max(0.0, min(waits)) if waits else None

    def told(self, notices: Iterable[DecisionDelayed]) -> None:
        for notice in notices:
            self._told[notice.application_id] = None
        while len(self._told) > _REMEMBERED:
            del self._told[next(iter(self._told))]
