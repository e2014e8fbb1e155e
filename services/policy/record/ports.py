"""What the decision log's readers need from outside: the reference index and the log read back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from services.policy.windows.ports import DecisionIndex
from shared.contracts import Decision, NotificationSent, ScoreComputed

__all__ = ["DecisionArchive", "IndexEntry", "NoArchive", "ReferenceIndex"]


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """Where a decision is: its customer (so its partition), when it was decided and when published
    (so its offset: a decision rebuilt after a crash is published later than it was decided)."""

    customer_id: str
    decided_at_ms: int
    published_at_ms: int


class ReferenceIndex(DecisionIndex, Protocol):
    """Decision references (`CW-...`) to where the decision is on `credit.windows`: derived state,
    written before a decision is published (`DecisionIndex.record`) and rebuilt from the topic with the book."""

    async def find(self, reference: str) -> IndexEntry | None: ...


class DecisionArchive(Protocol):
    """The decision log read back (kept forever): a decision by its reference, the score it was
    decided on, and what the customer was told about it."""

    async def decision(self, reference: str) -> Decision | None: ...

    async def score(self, decision: Decision) -> ScoreComputed | None: ...

    async def notices(self, decision: Decision) -> list[NotificationSent]: ...


class NoArchive:
    """No decision log to read back (a service wired without one): every reference leads nowhere."""

    async def decision(self, reference: str) -> Decision | None:
        return None

    async def score(self, decision: Decision) -> ScoreComputed | None:
        return None

    async def notices(self, decision: Decision) -> list[NotificationSent]:
        return []
