"""The clerk: carries out what arrives on `credit.reviews` (reviews by a person, suspensions) and
keeps the desk (`desk.py`, the pure state it writes: each customer's suspension, the open reviews).

Two roles, both through the ports (`DecisionArchive`, the book via the underwriter, `EventPublisher`):

- **acting** (one replica per record, a consumer group of its own): a request for review of a
  decision the customer holds is acknowledged (`ReviewOpened`); a signed review decision is carried
  out: upheld (`ReviewConcluded`), or overturned into a new decision through the book (trigger
  `review`) and then concluded. A forged or unsigned operator action, a request naming no decision
  of its customer, or a review that cannot be carried out is refused (a dead letter with why).
- **following** (every replica, from the start of the topic): verified suspensions and liftings and
  the reviews opened and concluded are applied to the desk; a suspension closes the customer's open
  window (every replica tries; the book closes it once), so a replica that decided an application
  before it saw the suspension still closes what it opened.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import structlog

from services.policy.care.desk import CustomerDesk
from services.policy.care.reviewing import conclusion, open_review, overturn, review_id_for, reviewed_record
from services.policy.control.checks import Signatures, check_action
from services.policy.control.document import PolicyDocument
from services.policy.record.ports import DecisionArchive
from services.policy.windows.decisions import Proposal
from services.policy.windows.rules import Close
from services.policy.windows.underwriting import Underwriter
from shared.clock import Clock
from shared.contracts import (
    CustomerSuspended,
    Decision,
    Event,
    OperatorAction,
    ReviewConcluded,
    ReviewDecided,
    ReviewOpened,
    ReviewRequested,
    SuspensionLifted,
    WindowClosed,
)
from shared.logging import event_ids
from shared.ports import EventPublisher
from shared.references import normalise_reference, reference_of
from shared.wire import Record, RefusedRecord

__all__ = ["Clerk", "Handled"]

log = structlog.get_logger("creditwindow.policy")


@dataclass(slots=True)
class Handled:
    """What a batch of `credit.reviews` came to."""

    published: list[Event] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    refused: list[RefusedRecord] = field(default_factory=list)
    actions: list[tuple[str, str]] = field(default_factory=list)  # (event type, result) for the metric


@dataclass(slots=True, kw_only=True)
class Clerk:
    """Acts on `credit.reviews` (one replica per record) and follows it into the desk (every replica)."""

    underwriter: Underwriter
    archive: DecisionArchive
    publisher: EventPublisher
    reviews_topic: str
    desk: CustomerDesk
    signatures: Signatures
    clock: Clock

    def verify(self, action: OperatorAction) -> str | None:
        """Why an operator action is refused (`<error_type>: <error>`), or None when it may take effect."""
        s = self.signatures
        refused = check_action(action, ring=s.ring, namespace=s.namespace, now=self.clock.now(), max_skew=s.max_skew)
        return None if refused is None else f"{refused.error_type}: {refused.error}"

    # --- acting (one replica per record) -------------------------------------------------------------

    async def act(self, events: Sequence[tuple[Record, Event]]) -> Handled:
        handled = Handled()
        for record, event in events:
            if isinstance(event, ReviewRequested):
                await self._open(record, event, handled)
            elif isinstance(event, OperatorAction):
                why = self.verify(event)
                handled.actions.append((event.event_type, "refused" if why else "accepted"))
                if why is not None:
                    error_type, error = why.split(": ", 1)
                    handled.refused.append(RefusedRecord(record, f"operator_{error_type}", error))
                    log.error("operator_action_refused", **event_ids(event), action=event.event_type, error=why)
                elif isinstance(event, ReviewDecided):
                    await self._carry_out(record, event, handled)
        if handled.published:
            await self.publisher.publish((self.reviews_topic, e) for e in handled.published)
        return handled

    async def _open(self, record: Record, request: ReviewRequested, handled: Handled) -> None:
        reference = normalise_reference(request.reference)
        decision = await self.archive.decision(reference) if reference else None
        if decision is None or decision.customer_id != request.customer_id:
            # The same answer whether the decision does not exist or is another customer's.
            handled.refused.append(RefusedRecord(record, "review_unknown_reference", f"no decision {request.reference!r} of this customer"))
            log.warning("review_refused", **event_ids(request), why="unknown_reference")
            return
        review_id = review_id_for(reference_of(decision.decision_id))
        if self.desk.is_concluded(review_id):
            log.info("review_already_concluded", **event_ids(request), reference=reference_of(decision.decision_id))
            return
        if review_id in self.desk.reviews:
            # Opened already (a duplicate request, or a redelivery): its deadline stands as told.
            log.info("review_already_open", **event_ids(request), reference=reference_of(decision.decision_id))
            return
        opened = open_review(request, decision, self.underwriter.state.active, self.clock.now())
        handled.published.append(opened)
        log.info("review_opened", **event_ids(opened), reference=opened.reference, respond_by=opened.respond_by.isoformat())

    async def _carry_out(self, record: Record, decided: ReviewDecided, handled: Handled) -> None:
        reviewed = await self.archive.decision(decided.reference)
        if reviewed is None or reviewed.decision_id != decided.decision_id or reviewed.customer_id != decided.customer_id:
            handled.refused.append(RefusedRecord(record, "review_mismatch", f"{decided.reference} is not decision {decided.decision_id} of {decided.customer_id}"))
            return
        new_decision_id = None
        if decided.outcome == "overturned":
            made = await self._overturn(decided, reviewed)
            if isinstance(made, str):
                handled.refused.append(RefusedRecord(record, "review_not_carried_out", made))
                log.error("review_not_carried_out", **event_ids(decided), why=made)
                return
            new_decision_id, published = made
            handled.decisions += published
        asked = self.desk.reviews.get(decided.review_id)
        concluded = conclusion(decided, reviewed, new_decision_id, self.clock.now(), locale=asked.locale if asked else None)
        handled.published.append(concluded)
        log.info("review_concluded", **event_ids(concluded), outcome=concluded.outcome, reference=concluded.reference, decided_by=concluded.decided_by)

    async def _overturn(self, decided: ReviewDecided, reviewed: Decision) -> tuple[uuid.UUID, list[Decision]] | str:
        """The new decision's id and what was published now (nothing on a redelivery), or why not."""
        score = await self.archive.score(reviewed)
        if score is None or score.facts is None or score.pd is None:
            return f"{decided.reference} has no scored application: its regulatory caps cannot be checked, so no window can open on it"
        if decided.limit is None:
            return "an overturn names the limit to open (--limit)"
        closed_record = None
        if isinstance(reviewed, WindowClosed) and reviewed.closes_decision_id is not None:
            closed = await self.archive.decision(reference_of(reviewed.closes_decision_id))
            closed_record = reviewed_record(closed) if closed is not None else None
        record = reviewed_record(reviewed, closed_record) or ""
        policy = self.underwriter.state.active
        now = self.clock.now()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        proposal = overturn(decided, reviewed, score, policy, now, record=record)
        if not await self._still_current(reviewed, record):
            proposal = _newer_application(proposal, policy, now)
        booked = await self.underwriter.put_to_book([proposal], lambda p, then: overturn(decided, reviewed, score, policy, then, record=record))
        if booked.conflicts:
            return "the application belongs to another customer"
        return proposal.decision_id, list(booked.decisions)

    async def _still_current(self, reviewed: Decision, record: str) -> bool:
        # The book orders an overturn as the decision it reviews while that record is kept; once it
        # has expired, a window of a newer application of the customer must not be superseded.
        if record and await self.underwriter.store.record(record) is not None:
            return True
        current = await self.underwriter.store.current(reviewed.customer_id)
        return current is None or current.decision_seq <= reviewed.decision_seq

    # --- following (every replica) -------------------------------------------------------------------

    async def follow(self, events: Sequence[Event], *, close: bool = True) -> list[Decision]:
        """Apply the batch to the desk; close the windows of customers suspended now (unless `close`
        is False: at start, `close_all_suspended` closes them once the desk is restored)."""
        closures: list[Decision] = []
        for event in events:
            if isinstance(event, ReviewOpened):
                self.desk.opened(event)
            elif isinstance(event, ReviewConcluded):
                self.desk.concluded(event)
            elif isinstance(event, (CustomerSuspended, SuspensionLifted)) and self.verify(event) is None:
                closures += await self.apply_suspension(event, close=close)
        return closures

    async def apply_suspension(self, action: CustomerSuspended | SuspensionLifted, *, close: bool = True) -> list[Decision]:
        if isinstance(action, SuspensionLifted):
            if self.desk.lift(action):
                log.info("suspension_lifted", customer_id=action.customer_id, issued_by=action.issued_by)
            return []
        suspension = self.desk.suspend(action)
        if suspension is None:
            return []
        log.info("customer_suspended", customer_id=action.customer_id, reason=action.reason, until=str(action.until), issued_by=action.issued_by)
        if close and suspension.active(self.clock.now()):
            return list(await self.underwriter.close_suspended(action.customer_id))
        return []

    async def close_all_suspended(self) -> list[Decision]:
        """At start: close any open window of a customer suspended while no replica ran."""
        now = self.clock.now()
        closures: list[Decision] = []
        for customer in [c for c, s in self.desk.suspensions.items() if s.active(now)]:
            closures += await self.underwriter.close_suspended(customer)
        return closures


def _newer_application(proposal: Proposal, policy: PolicyDocument, now: datetime) -> Proposal:
    # Told as the book tells an offer it refuses for the same reason.
    return replace(proposal, verdict=Close("strategy", "newer_application", retry_after=now + policy.timing.strategy_retry))
