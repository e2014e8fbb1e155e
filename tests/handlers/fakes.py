"""Small in-memory stand-ins for what the handler tests read back, recording what happened.

No Redis rule is faked here: the policy's handler tests use the in-memory book
(`services.policy.windows.adapters.memory_book.MemoryBook`), the notification's the in-memory ledger and webhook queue
(`services.notification.memory_ledger`, `memory_webhooks`): the same rules as production, each held
equal to its Lua twin by a test in tests/e2e/.
"""

from __future__ import annotations

from collections.abc import Sequence


class MemoryArchive:
    """The decision log read back, in memory: the policy's `ReferenceIndex` (it records every decision
    before publishing) and `DecisionArchive` in one, with the scores a test sent."""

    def __init__(self) -> None:
        from shared.contracts import Decision, NotificationSent, ScoreComputed

        self.decisions: dict[str, Decision] = {}
        self.scores: dict[object, ScoreComputed] = {}
        self.told: dict[object, list[NotificationSent]] = {}

    def keep_score(self, score: object) -> None:
        self.scores[score.event_id] = score  # type: ignore[attr-defined]

    async def record(self, decisions: Sequence[object]) -> None:
        from shared.references import reference_of

        for decision in decisions:
            self.decisions.setdefault(reference_of(decision.decision_id), decision)  # type: ignore[attr-defined]

    async def find(self, reference: str) -> object:
        from services.policy.record.ports import IndexEntry

        found = self.decisions.get(reference)
        if found is None:
            return None
        ms = int(found.occurred_at.timestamp() * 1000)
        return IndexEntry(found.customer_id, ms, ms)

    async def decision(self, reference: str) -> object:
        return self.decisions.get(reference)

    async def score(self, decision: object) -> object:
        from shared.references import reference_of

        reviewed = getattr(decision, "reviewed_decision_id", None)
        if reviewed is not None:
            return await self.score(self.decisions[reference_of(reviewed)])
        return self.scores.get(decision.causation_id)  # type: ignore[attr-defined]

    async def notices(self, decision: object) -> list[object]:
        return list(self.told.get(decision.decision_id, []))  # type: ignore[attr-defined]
