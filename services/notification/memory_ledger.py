"""The notification ledger in this process's memory: a `Ledger` over `ledger.NoticeLedger`.

The handler tests tell decisions with it: the same rules as the Redis ledger, held equal to it by
`tests/e2e/test_notification_twins.py`. `clock` stands for Redis's TIME (when a notice is forgotten).
"""

from __future__ import annotations

from collections.abc import Sequence

from services.notification.ledger import NoticeLedger
from services.notification.ports import Claim
from shared.clock import Clock

__all__ = ["MemoryLedger"]


class MemoryLedger:
    def __init__(self, clock: Clock) -> None:
        self.ledger = NoticeLedger()
        self.clock = clock

    def _now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    async def claim(self, decisions: Sequence[tuple[str, str, int]]) -> list[Claim]:
        return self.ledger.claim(decisions, self._now_ms())

    async def remember(self, notices: Sequence[tuple[str, bytes]]) -> None:
        self.ledger.remember(notices, self._now_ms())

    async def mark_published(self, decision_ids: Sequence[str]) -> None:
        self.ledger.mark_published(decision_ids, self._now_ms())
