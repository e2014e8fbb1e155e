"""Review by a person (PIPL art. 24), from request to outcome. Pure.

- `review_id_for`: one review per decision, whatever the number of requests (the id is derived
  from the decision's reference);
- `open_review`: the acknowledgement of a request for a decision of the same customer, and when a
  person will have decided it: `customer_care.review_within` of the active policy after the fleet
  opened the review (its own clock; the time an upstream app wrote on the request is kept as
  `requested_at` but sets no deadline);
- `overturn`: the decision a person makes when they open the window on review. It is a new decision
  (trigger `review`) that goes through the book like any other: the limit the reviewer set, still
  under the regulatory caps (a cap that leaves less than the minimum closes it as `regulatory`),
  priced by the grade the scorecard gave, charged to the segment's budget, and ordered as the
  decision it reviews, so it supersedes that decision but never a newer application's window;
- `conclusion`: what the review came to, for the customer and the record.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from services.policy import PRODUCER
from services.policy.control.document import PolicyDocument
from services.policy.windows.book import round_down
from services.policy.windows.decisions import OnReview, Proposal, decision_id_for, record_key
from services.policy.windows.rules import Close, Offer, income_cap, threshold_of
from shared.contracts import (
    Decision,
    LimitBasis,
    ReviewConcluded,
    ReviewDecided,
    ReviewOpened,
    ReviewRequested,
    ScoreComputed,
    WindowClosed,
    WindowOpened,
    deterministic_id,
)
from shared.references import reference_of

__all__ = ["conclusion", "open_review", "overturn", "review_id_for", "reviewed_record"]



def review_id_for(reference: str) -> uuid.UUID:
    """The review of a decision: duplicate requests (the same reference) make one review."""
    return deterministic_id("review", reference)


def _about(decision: Decision) -> dict[str, Any]:
    """What every review event says of the decision under review, and the application it belongs to."""
    return {
        "correlation_id": decision.application_id,
        "decision_id": decision.decision_id,
        "application_id": decision.application_id,
        "customer_id": decision.customer_id,
        "reviewed_outcome": "opened" if isinstance(decision, WindowOpened) else "closed",
        "reviewed_category": decision.category if isinstance(decision, WindowClosed) else None,
    }


def open_review(request: ReviewRequested, decision: Decision, policy: PolicyDocument, now: datetime) -> ReviewOpened:
    """The acknowledgement, at `now`, of a request for review of `decision` (the caller checked the customer)."""
    reference = reference_of(decision.decision_id)
    review_id = review_id_for(reference)
    return ReviewOpened.caused_by(
        request,
        key=("review-opened", review_id),
        producer=PRODUCER,
        occurred_at=now,
        review_id=review_id,
        reference=reference,
        locale=request.locale,
        requested_at=request.occurred_at,
        respond_by=now + policy.customer_care.review_within,
        **_about(decision),
    )


def reviewed_record(decision: Decision, closed_record: str | None = None) -> str | None:
    """The book's record of a reviewed decision (a lifecycle closure: the record of the window it closed)."""
    if decision.trigger in ("application", "redecision"):
        unread = isinstance(decision, WindowClosed) and decision.reason == "application_invalid"
        return record_key(decision.application_id, decision.trigger, unreadable=unread)
    if decision.trigger == "review" and decision.reviewed_decision_id is not None:
        return record_key(decision.application_id, "review", reviewed=str(decision.reviewed_decision_id))
    return closed_record


def overturn(
    decided: ReviewDecided, reviewed: Decision, score: ScoreComputed, policy: PolicyDocument, now: datetime, *, record: str
) -> Proposal:
    """Open the window on review with the reviewer's limit, within the regulatory caps (see the module)."""
    facts = score.facts
    if facts is None or score.pd is None or decided.limit is None:
        raise ValueError("an overturn needs the scored facts of the decision and a limit")
    terms = policy.grades.get(score.grade or "") or policy.grades["G"]  # type: ignore[call-overload]
    el_rate = score.pd * policy.pricing.lgd
    bounds = [(float(decided.limit), "reviewer"), (income_cap(facts, policy), "income_cap"), (float(policy.regulatory.absolute_cap), "absolute_cap")]
    priority = {"absolute_cap": 0, "income_cap": 1, "reviewer": 2}
    amount, bound_by = min(bounds, key=lambda b: (b[0], priority[b[1]]))
    limit = round_down(amount, policy.limits.round_to)
    verdict: Offer | Close
    if limit < policy.limits.min_limit:
        reason = bound_by if bound_by != "reviewer" else "below_minimum_limit"
        category = "regulatory" if bound_by != "reviewer" else "credit"
        verdict = Close(category, reason, threshold=threshold_of(reason, score, policy))  # type: ignore[arg-type]
    else:
        verdict = Offer(
            limit=limit,
            apr=terms.apr,
            pd=score.pd,
            margin=terms.apr - policy.pricing.funding_cost - el_rate,
            el_rate=el_rate,
            basis=LimitBasis(
                cycle_factor=policy.cycle_factor,
                income_fraction=policy.regulatory.income_fraction,
                absolute_cap=policy.regulatory.absolute_cap,
                bound_by=bound_by,  # type: ignore[arg-type]
            ),
            valid_until=now + policy.timing.window_validity,
        )
    on_review = OnReview(reviewed.decision_id, record, decided.note, decided.event_id)
    key = record_key(reviewed.application_id, "review", reviewed=str(reviewed.decision_id))
    return Proposal(score, verdict, decision_id_for(key), policy.label, "review", now, on_review)


def conclusion(
    decided: ReviewDecided, reviewed: Decision, new_decision_id: uuid.UUID | None, now: datetime, *, locale: str | None = None
) -> ReviewConcluded:
    """The record (and the customer's notice) of what a review came to, in the language the customer
    asked in (`locale`; the decision's when unknown)."""
    return ReviewConcluded.caused_by(
        decided,
        key=("review-concluded", decided.review_id),
        producer=PRODUCER,
        occurred_at=now,
        review_id=decided.review_id,
        reference=decided.reference,
        locale=locale or reviewed.locale,  # type: ignore[arg-type]
        outcome=decided.outcome,
        note=decided.note,
        decided_by=decided.issued_by,
        new_decision_id=new_decision_id,
        **_about(reviewed),
    )
