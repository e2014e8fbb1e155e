"""From a score to a decision event, around the atomic budget step. Pure.

``propose`` applies the rules; the limit store then allocates atomically (budget, sequence,
superseding); ``decide`` turns the proposal and the store's answer into `WindowOpened` or
`WindowClosed`. Ids are derived from the application, so a redelivered score is the same decision.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from services.policy.document import PolicyDocument
from services.policy.rules import Close, Offer, evaluate
from shared.contracts import Decision, ScoreComputed, Trigger, WindowClosed, WindowOpened, deterministic_id

__all__ = ["Allocation", "Proposal", "closure_id", "decide", "decision_id_for", "lifecycle_closure", "propose"]

PRODUCER = "policy"


def decision_id_for(application_id: str) -> uuid.UUID:
    return deterministic_id("decision", application_id)


def closure_id(application_id: str, trigger: str) -> uuid.UUID:
    """Id of the lifecycle closure (expiry, pause) of the window an application opened."""
    return deterministic_id("closure", trigger, application_id)


@dataclass(frozen=True, slots=True)
class Proposal:
    score: ScoreComputed
    verdict: Offer | Close
    decision_id: uuid.UUID
    policy_label: str
    trigger: Trigger = "application"
    decided_at: datetime = datetime.min.replace(tzinfo=UTC)

    @property
    def record_key(self) -> str:
        """The limit store's idempotency key: one decision per application, one more if decided again."""
        if self.trigger == "redecision":
            return f"{self.score.application_id}~r"
        return self.score.application_id

    @property
    def supersedes(self) -> bool:
        # A system closure is not about the customer: an open window they hold stays open.
        return not (isinstance(self.verdict, Close) and self.verdict.category == "system")


@dataclass(frozen=True, slots=True, kw_only=True)
class Allocation:
    """The limit store's answer for one proposal."""

    fresh: bool  # False: this application was decided before (a redelivery or a duplicate)
    seq: int
    granted: int
    refusal: str | None
    programme_part: int
    available: int
    budget_bound: bool = False  # the segment budget, not a cap or the grade, set the limit
    expected_loss_fen: int = 0  # limit x PD x LGD as reserved, in fen
    decided_at_ms: int = 0  # when the store first decided it: a rebuilt event uses that time
    stored_event: bytes | None = None
    published: bool = False


def propose(score: ScoreComputed, policy: PolicyDocument, now: datetime, trigger: Trigger = "application") -> Proposal:
    key = score.application_id if trigger == "application" else f"{score.application_id}~r"
    return Proposal(score, evaluate(score, policy, now), decision_id_for(key), policy.label, trigger, now)


def decide(proposal: Proposal, allocation: Allocation, policy: PolicyDocument, now: datetime) -> Decision:
    score = proposal.score
    facts = score.facts
    common = {
        "event_id": proposal.decision_id,
        "correlation_id": score.application_id,
        "causation_id": score.event_id,
        "producer": PRODUCER,
        "occurred_at": now,
        "decision_id": proposal.decision_id,
        "decision_seq": allocation.seq,
        "application_id": score.application_id,
        "customer_id": score.customer_id,
        "segment": facts.segment if facts else None,
        "region": facts.region if facts else None,
        "channel": facts.channel if facts else None,
        "locale": facts.locale if facts else "zh-CN",
        "partner_id": facts.partner_id if facts else None,
        "policy_version": proposal.policy_label,
        "model_id": score.model_id,
        "trigger": proposal.trigger,
    }
    verdict = proposal.verdict
    if isinstance(verdict, Offer) and allocation.granted > 0:
        basis = verdict.basis.model_copy(
            update={
                "budget_available": allocation.available,
                "programme_part": allocation.programme_part,
                "bound_by": "segment_budget" if allocation.budget_bound else verdict.basis.bound_by,
            }
        )
        return WindowOpened(
            **common,
            limit=allocation.granted,
            apr=verdict.apr,
            daily_rate=round(verdict.apr / 365, 6),
            valid_until=verdict.valid_until,
            grade=score.grade or "",
            pd=verdict.pd,
            points=score.points or 0.0,
            expected_loss=allocation.expected_loss_fen / 100,
            basis=basis,
        )
    if isinstance(verdict, Offer):
        closed = Close(
            "strategy",
            allocation.refusal or "budget_exhausted",
            retry_after=now + policy.timing.strategy_retry,
        )
    else:
        closed = verdict
    return WindowClosed(
        **common,
        category=closed.category,
        reason=closed.reason,
        reasons=closed.reasons,
        recourse=closed.recourse,
        retry_after=closed.retry_after,
        grade=score.grade,
        pd=score.pd,
        points=score.points,
    )


def lifecycle_closure(fields: dict[str, str], *, policy_label: str) -> WindowClosed:
    """The `WindowClosed` announcing an expiry or a pause closure recorded by the limit store."""
    closure = uuid.UUID(fields["closure_id"])
    application_id = fields["application_id"]
    return WindowClosed(
        event_id=closure,
        correlation_id=application_id,
        producer=PRODUCER,
        occurred_at=datetime.fromtimestamp(int(fields["closure_at"]) / 1000, UTC),
        decision_id=closure,
        decision_seq=int(fields["closure_seq"]),
        application_id=application_id,
        customer_id=fields["customer"],
        segment=fields.get("segment") or None,  # type: ignore[arg-type]
        region=fields.get("region") or None,
        channel=fields.get("channel") or None,
        locale=fields.get("locale") or "zh-CN",  # type: ignore[arg-type]
        partner_id=fields.get("partner") or None,
        policy_version=policy_label,
        model_id=fields.get("model_id") or None,
        trigger=fields["closure_trigger"],  # type: ignore[arg-type]
        category=fields["closure_category"],  # type: ignore[arg-type]
        reason=fields["closure_reason"],
        closes_decision_id=uuid.UUID(fields["decision_id"]),
    )
