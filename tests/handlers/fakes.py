"""Small in-memory stand-ins for the Redis adapters, recording what happened.

They keep the same promises as the real stores (an application is decided once; a decision is
announced once, never when stale) so handler tests can check the handlers' use of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from services.notification.redis_ledger import Claim
from services.policy.budget import BudgetState, grant
from services.policy.decisions import Allocation, Proposal
from services.policy.document import PolicyDocument
from services.policy.redis_limits import LifecycleClosure
from services.policy.rules import Offer


class FakeLimitStore:
    def __init__(self) -> None:
        self.apps: dict[str, dict[str, object]] = {}
        self.budgets: dict[str, BudgetState] = {}
        self.seq: dict[str, int] = {}
        self.windows: dict[str, dict[str, object]] = {}
        self.published: set[str] = set()
        self.calls: list[str] = []

    async def allocate(self, proposals: Sequence[Proposal], policy: PolicyDocument) -> list[Allocation]:
        self.calls.append(f"allocate:{len(proposals)}")
        out = []
        for proposal in proposals:
            app_id = proposal.record_key
            if app_id in self.apps:
                a = self.apps[app_id]
                out.append(
                    Allocation(
                        fresh=False,
                        seq=a["seq"],  # type: ignore[arg-type]
                        granted=a["granted"],  # type: ignore[arg-type]
                        refusal=a["refusal"],  # type: ignore[arg-type]
                        programme_part=0,
                        available=0,
                        stored_event=a.get("event"),  # type: ignore[arg-type]
                        published=app_id in self.published,
                    )
                )
                continue
            segment = proposal.score.facts.segment if proposal.score.facts else "unknown"
            granted, refusal, available = 0, None, 0
            if isinstance(proposal.verdict, Offer):
                state = self.budgets.get(segment, BudgetState())
                result = grant(proposal.verdict, state, policy, segment)
                granted, refusal, available = result.limit, result.refusal, result.budget_available
                self.budgets[segment] = BudgetState(
                    state.reserved_exposure + granted, state.reserved_el + granted * proposal.verdict.el_rate, state.programme_reserved
                )
            seq = self.seq.get(proposal.score.customer_id, 0) + 1
            self.seq[proposal.score.customer_id] = seq
            self.apps[app_id] = {"seq": seq, "granted": granted, "refusal": refusal}
            if proposal.supersedes:
                self.windows[proposal.score.customer_id] = {"application_id": app_id, "limit": granted, "seq": seq}
            el_fen = round(granted * proposal.verdict.el_rate * 100) if isinstance(proposal.verdict, Offer) else 0
            out.append(
                Allocation(
                    fresh=True, seq=seq, granted=granted, refusal=refusal, programme_part=0, available=available, expected_loss_fen=el_fen
                )
            )
        return out

    async def remember(self, decisions: Sequence[tuple[str, bytes]]) -> None:
        for app_id, payload in decisions:
            self.apps[app_id].setdefault("event", payload)

    async def mark_published(self, application_ids: Sequence[str]) -> None:
        self.published.update(application_ids)

    async def due_expiries(self, now: datetime, limit: int = 200) -> list[str]:
        return []

    async def open_applications(self) -> list[str]:
        return []

    async def application(self, application_id: str) -> dict[str, str]:
        return {}

    async def close(self, application_id: str, **_: object) -> LifecycleClosure | None:
        return None

    async def pending_closures(self, limit: int = 200) -> list[LifecycleClosure]:
        return []

    async def closure_published(self, application_ids: Sequence[str]) -> None:
        return None

    async def due_deferred(self, now: datetime, limit: int = 200) -> list[tuple[str, bytes]]:
        return []

    async def redecided(self, record_keys: Sequence[str]) -> None:
        return None


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
            elif seq <= self.last_seq.get(customer, 0):
                out.append(Claim("stale"))
            else:
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
