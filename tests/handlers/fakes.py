"""Small in-memory stand-ins for the notification's Redis ledger, recording what happened.

It keeps the same promises as the real store (a decision is announced once, never when stale) so
handler tests can check the handlers' use of it. The policy's handler tests need no fake: they use
the in-memory book (`services.policy.memory_book.MemoryBook`), the same ledger rules as production.
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
