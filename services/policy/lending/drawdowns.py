"""Drawdowns and repayments: from a request to the book's request, and from the book's answer to the
outcome event. Pure.

Ids are derived from the drawdown's (or repayment's) id, so a redelivered request is the same
outcome: the book answers it once (`Book.draw`, `Book.repay`) and every later ask gets the first
answer back, which is published again with the same event id.
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.policy import PRODUCER
from services.policy.control.document import PolicyDocument
from services.policy.windows.model import DrawRequest, Movement, RepayRequest
from shared.contracts import (
    DrawdownApproved,
    DrawdownOutcome,
    DrawdownRefused,
    DrawdownRequested,
    Repaid,
    RepaymentApplied,
)

__all__ = ["applied", "draw_request", "movement_of", "outcome", "repay_request"]



def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _at(movement: Movement) -> datetime:
    """When the book decided it: an outcome told again (a redelivery) keeps the first answer's time."""
    return datetime.fromtimestamp(movement.at / 1000, UTC)


def draw_request(event: DrawdownRequested, policy: PolicyDocument, now: datetime) -> DrawRequest:
    """The book's request for a drawdown, under the regulatory caps in force now."""
    return DrawRequest(
        drawdown_id=event.drawdown_id,
        customer=event.customer_id,
        amount=event.amount,
        at_ms=_ms(now),
        absolute_cap=policy.regulatory.absolute_cap,
        income_fraction=repr(policy.regulatory.income_fraction),
        policy_version=policy.label,
    )


def repay_request(event: Repaid, now: datetime) -> RepayRequest:
    return RepayRequest(
        repayment_id=event.repayment_id, customer=event.customer_id, amount=event.amount, at_ms=_ms(now)
    )


def outcome(event: DrawdownRequested, movement: Movement) -> DrawdownApproved | DrawdownRefused:
    """The outcome event of a drawdown the book answered (the first answer, for a redelivery)."""
    common = {
        "key": ("drawdown", event.drawdown_id),
        "producer": PRODUCER,
        "occurred_at": _at(movement),
        "drawdown_id": event.drawdown_id,
        "customer_id": event.customer_id,
        "amount": movement.amount,
        "locale": event.locale,
        "decision_id": movement.decision_id or None,
        "application_id": movement.application_id or None,
        "limit": movement.limit,
        "balance": movement.balance,
        "available": movement.available,
        "balance_seq": movement.balance_seq,
        "policy_version": movement.policy_version,
    }
    if movement.approved:
        return DrawdownApproved.caused_by(event, **common)  # type: ignore[arg-type]
    return DrawdownRefused.caused_by(
        event, **common, category=movement.category, reason=movement.reason, window_reason=movement.window_reason or None
    )  # type: ignore[arg-type]


def applied(event: Repaid, movement: Movement) -> RepaymentApplied:
    """The event of a repayment the book applied."""
    return RepaymentApplied.caused_by(
        event,
        key=("repayment", event.repayment_id),
        producer=PRODUCER,
        occurred_at=_at(movement),
        repayment_id=event.repayment_id,
        customer_id=event.customer_id,
        amount=movement.amount,
        locale=event.locale,
        applied=movement.applied,
        balance=movement.balance,
        balance_seq=movement.balance_seq,
    )


def movement_of(event: DrawdownOutcome | RepaymentApplied) -> tuple[str, Movement]:
    """What the book keeps of a published outcome: its id and its answer (for a rebuild)."""
    at = _ms(event.occurred_at)
    if isinstance(event, RepaymentApplied):
        return event.repayment_id, Movement(
            fresh=False, customer=event.customer_id, amount=event.amount, approved=True, balance=event.balance,
            balance_seq=event.balance_seq, applied=event.applied, at=at, repayment=True,
        )  # fmt: skip
    refused = isinstance(event, DrawdownRefused)
    return event.drawdown_id, Movement(
        fresh=False, customer=event.customer_id, amount=event.amount, approved=not refused, balance=event.balance,
        balance_seq=event.balance_seq, available=event.available, limit=event.limit,
        decision_id=str(event.decision_id) if event.decision_id else "", application_id=event.application_id or "",
        category=event.category if refused else "", reason=event.reason if refused else "",  # type: ignore[union-attr]
        window_reason=(event.window_reason or "") if refused else "", at=at, policy_version=event.policy_version,
    )  # fmt: skip
