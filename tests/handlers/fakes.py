"""Small in-memory stand-ins for the notification's Redis ledger, recording what happened.

It keeps the same promises as the real store (a decision is announced once, never when stale) so
handler tests can check the handlers' use of it. The policy's handler tests need no fake: they use
the in-memory book (`services.policy.windows.adapters.memory_book.MemoryBook`), the same ledger rules as production.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.notification.ports import Claim


class FakeLedger:
    def __init__(self) -> None:
        self.claimed: dict[str, dict[str, object]] = {}
        self.last_seq: dict[str, int] = {}

    async def claim(self, decisions: Sequence[tuple[str, str, int]]) -> list[Claim]:
        out = []
        for decision_id, customer, seq in decisions:
            if decision_id in self.claimed:
                entry = self.claimed[decision_id]
                out.append(Claim("done") if entry.get("published") else Claim("again", entry.get("event")))  # type: ignore[arg-type]
            elif seq > 0 and seq <= self.last_seq.get(customer, 0):
                out.append(Claim("stale"))
            else:
                if seq > 0:
                    self.last_seq[customer] = seq
                self.claimed[decision_id] = {}
                out.append(Claim("fresh"))
        return out

    async def remember(self, notices: Sequence[tuple[str, bytes]]) -> None:
        for decision_id, payload in notices:
            self.claimed[decision_id].setdefault("event", payload)

    async def mark_published(self, decision_ids: Sequence[str]) -> None:
        for decision_id in decision_ids:
            self.claimed[decision_id]["published"] = True


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
