"""From a score to a decision event, around the book's atomic step. Pure.

Three steps around the book's one: ``propose`` applies the rules to a score; ``plan`` turns a
batch of proposals into the book's requests, each charged to its budget (worked out once);
the book posts them; ``booked`` turns its answers (`Posting`) into `WindowOpened` or
`WindowClosed` (``decision_event``) and the events to keep. Ids are derived from the application,
so a redelivered score is the same decision.

Two instants, one rule each (docs/time.md):

- **the application's time** (`Proposal.charged_at`: when the fleet received it, the `occurred_at`
  the scoring service stamped on its score) says which **budget period** it is charged to, the share
  of that period gone by (pacing) and which **dated programme** boosts it. So an application
  received at 23:59:59 on a month's last day in China time is charged to that month wherever and
  whenever it is decided: live after an outage, on review, in the shadow, in `simulate`, and a
  rebuild reads the period the decision names;
- **the decision's time** (`now`, from the injected clock) says what the platform does now:
  maintenance, pauses and suspensions in force, when the window it opens expires and when to try
  again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from services.policy import PRODUCER
from services.policy.control.document import PolicyDocument
from services.policy.windows.book import budget_key
from services.policy.windows.model import (
    BudgetTerms,
    CloseRequest,
    DecisionRecord,
    OfferTerms,
    Posting,
    WindowRequest,
)
from services.policy.windows.periods import period_span
from services.policy.windows.ports import Suspension
from services.policy.windows.rules import Close, Offer, evaluate
from shared.contracts import (
    DEFAULT_LOCALE,
    Decision,
    ScoreComputed,
    Trigger,
    WindowClosed,
    WindowOpened,
    deterministic_id,
)
from shared.wire import serialised

__all__ = [
    "Booked",
    "Charge",
    "OnReview",
    "Plan",
    "Proposal",
    "book_request",
    "booked",
    "budget_charge",
    "budget_period",
    "budget_terms",
    "budgets_now",
    "charge_of",
    "close_request",
    "closure_id",
    "decision_event",
    "decision_id_for",
    "lifecycle_closure",
    "parse_decision",
    "plan",
    "propose",
    "record_key",
    "request_for",
    "unreadable",
]



def decision_id_for(record: str) -> uuid.UUID:
    """The decision's id, derived from its record key: a redelivered score is the same decision."""
    return deterministic_id("decision", record)


def record_key(application_id: str, trigger: str, *, unreadable: bool = False, reviewed: str = "") -> str:
    """The book's key of a decision: one per application; one more if decided again (``~r``); an
    application that could not be read is closed under ``~invalid``, so a corrected resubmission of
    the same application is still decided; a decision a person made on review of decision `reviewed`
    under ``~review:<reviewed>`` (one per reviewed decision)."""
    if trigger == "redecision":
        return f"{application_id}~r"
    if trigger == "review":
        return f"{application_id}~review:{reviewed}"
    if unreadable:
        return f"{application_id}~invalid"
    return application_id


def unreadable(score: ScoreComputed) -> bool:
    """The application behind this score could not be read (a dead letter and a system closure)."""
    return score.outcome != "scored" and (score.failure or "").startswith("application_invalid")


def closure_id(application_id: str, trigger: str) -> uuid.UUID:
    """Id of the lifecycle closure (expiry, pause) of the window an application opened."""
    return deterministic_id("closure", trigger, application_id)


@dataclass(frozen=True, slots=True)
class OnReview:
    """What a decision made on review carries besides its verdict: the decision reviewed (and its book
    record), the reviewer's note, and the signed `ReviewDecided` that caused it."""

    reviewed_decision_id: uuid.UUID
    reviewed_record: str
    note: str
    cause: uuid.UUID


@dataclass(frozen=True, slots=True)
class Proposal:
    score: ScoreComputed
    verdict: Offer | Close
    decision_id: uuid.UUID
    policy_label: str
    trigger: Trigger = "application"
    decided_at: datetime = datetime.min.replace(tzinfo=UTC)
    review: OnReview | None = None

    @property
    def record_key(self) -> str:
        """The book's idempotency key (see `record_key`)."""
        reviewed = str(self.review.reviewed_decision_id) if self.review else ""
        return record_key(self.score.application_id, self.trigger, unreadable=unreadable(self.score), reviewed=reviewed)

    @property
    def charged_at(self) -> datetime:
        """The application's time: its budget period, pacing and programme are counted at it."""
        return self.score.occurred_at

    @property
    def supersedes(self) -> bool:
        # A system closure is not about the customer: an open window they hold stays open.
        return not (isinstance(self.verdict, Close) and self.verdict.category == "system")


def propose(
    score: ScoreComputed, policy: PolicyDocument, now: datetime, trigger: Trigger = "application", *, suspension: Suspension | None = None
) -> Proposal:
    key = record_key(score.application_id, trigger, unreadable=unreadable(score))
    return Proposal(score, evaluate(score, policy, now, suspension), decision_id_for(key), policy.label, trigger, now)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def budget_period(policy: PolicyDocument, segment: str, now: datetime) -> str:
    """The label of the budget period `now` falls in for the segment ("" if its budget has no period)."""
    budget = policy.budgets.get(segment)  # type: ignore[call-overload]
    if budget is None or budget.period is None:
        return ""
    return period_span(budget.period, now, policy.zone).label


@dataclass(frozen=True, slots=True)
class Charge:
    """The budget a decision is charged to, worked out once: its book key (`book.budget_key`), the
    label of its period ("" for a budget for all time), and the terms the book takes."""

    key: str
    period: str
    terms: BudgetTerms


def budget_charge(policy: PolicyDocument, segment: str, now: datetime, *, elapsed: float | None = None) -> Charge:
    """The segment's budget at `now` as the book takes it. `elapsed` overrides the share of the
    period gone by (a replay counts it in arrivals)."""
    budget = policy.budgets.get(segment)  # type: ignore[call-overload]
    programme = policy.programme_for(segment, now)
    pacing = policy.pacing
    label, share = "", 0.0
    if budget is not None and budget.period is not None:
        span = period_span(budget.period, now, policy.zone)
        label, share = span.label, span.elapsed(now)
    demand = tuple((p.margin, float(p.exposure), float(p.expected_loss)) for p in pacing.demand.get(segment, ()))  # type: ignore[call-overload]
    return Charge(budget_key(segment, label), label, BudgetTerms(
        exposure=budget.exposure if budget else 0,
        expected_loss=budget.expected_loss if budget else 0,
        programme_budget=programme.budget if programme else 0,
        round_to=policy.limits.round_to,
        min_limit=policy.limits.min_limit,
        pacing=pacing.enabled and bool(demand),
        elapsed=share if elapsed is None else elapsed,
        slack=pacing.slack,
        demand=demand,
    ))  # fmt: skip


def budget_terms(
    policy: PolicyDocument, segment: str, now: datetime, *, elapsed: float | None = None
) -> tuple[str, BudgetTerms]:
    """The book key of the segment's budget at `now` and what the policy says about it (`budget_charge`)."""
    charge = budget_charge(policy, segment, now, elapsed=elapsed)
    return charge.key, charge.terms


def budgets_now(policy: PolicyDocument, now: datetime) -> dict[str, tuple[str, BudgetTerms]]:
    """Every segment's budget at `now`: segment -> (book key, terms)."""
    return {str(segment): budget_terms(policy, segment, now) for segment in policy.budgets}


def charge_of(proposal: Proposal, policy: PolicyDocument) -> Charge:
    """The budget a proposal is charged to: its segment's budget at the application's time (a
    segment without a budget: its own key, nothing to spend)."""
    segment = proposal.score.facts.segment if proposal.score.facts else "unknown"
    if segment not in policy.budgets:
        return Charge(segment, "", BudgetTerms(exposure=0, expected_loss=0))
    return budget_charge(policy, segment, proposal.charged_at)


def book_request(proposal: Proposal, policy: PolicyDocument) -> tuple[WindowRequest, BudgetTerms]:
    """One proposal's request to the book and the terms of the budget it names (`Book.post(*...)`)."""
    charge = charge_of(proposal, policy)
    return request_for(proposal, policy, charge), charge.terms


@dataclass(frozen=True, slots=True)
class Plan:
    """A batch of proposals as the book takes it: a request each, the budget each is charged to,
    and the terms of every budget the requests name (by book key)."""

    proposals: Sequence[Proposal]
    requests: list[WindowRequest]
    charges: list[Charge]
    budgets: dict[str, BudgetTerms]


def plan(proposals: Sequence[Proposal], policy: PolicyDocument) -> Plan:
    """The book's requests for `proposals`, each charged to the budget of its application's time (a
    batch straddling a period's end names two budgets). The charge is worked out once per segment and
    time (the scores of one scoring batch share their time); a budget's terms (pacing's share of the
    period) are those at the first application of the batch in it."""
    charges: dict[tuple[str, datetime], Charge] = {}
    each: list[Charge] = []
    requests: list[WindowRequest] = []
    budgets: dict[str, BudgetTerms] = {}
    for proposal in proposals:
        segment = proposal.score.facts.segment if proposal.score.facts else ""
        charge = charges.get((segment, proposal.charged_at))
        if charge is None:
            charge = charges[(segment, proposal.charged_at)] = charge_of(proposal, policy)
            budgets.setdefault(charge.key, charge.terms)
        each.append(charge)
        requests.append(request_for(proposal, policy, charge))
    return Plan(proposals, requests, each, budgets)


@dataclass(frozen=True, slots=True)
class Booked:
    """What the book's answers to a plan come to: the decisions to publish now (fresh, or kept from
    an attempt that crashed before publishing), the record of each, the new events to keep (the same
    bytes go to Kafka), and the proposals refused because their application is another customer's."""

    decisions: list[Decision]
    records: list[str]
    new: list[tuple[str, bytes]]
    conflicts: list[ScoreComputed]


def booked(
    batch: Plan, postings: Sequence[Posting], policy: PolicyDocument, now: datetime, again: Callable[[Proposal, datetime], Proposal]
) -> Booked:
    """The decisions of a plan the book answered with `postings`, at `now`. A record the book decided
    before but never kept the event of (a crash in between) is announced as it was decided then:
    `again` rebuilds its proposal at that time."""
    result = Booked([], [], [], [])
    for proposal, charge, posting in zip(batch.proposals, batch.charges, postings, strict=True):
        if posting.conflict:
            result.conflicts.append(proposal.score)
            continue
        if posting.published or posting.decided_as_read:
            continue
        if posting.stored_event is not None:
            result.decisions.append(parse_decision(posting.stored_event))
            result.records.append(proposal.record_key)
            continue
        if not posting.fresh and posting.decided_at_ms:
            then = datetime.fromtimestamp(posting.decided_at_ms / 1000, UTC)
            proposal = again(proposal, then)
            decision = decision_event(proposal, posting, policy, then, period=charge.period)
        else:
            decision = decision_event(proposal, posting, policy, now, period=charge.period)
        result.decisions.append(decision)
        result.records.append(proposal.record_key)
        result.new.append((proposal.record_key, serialised(decision)))
    return result


def parse_decision(payload: bytes) -> Decision:
    """A decision event kept by the book, as it was published."""
    model = WindowOpened if b'"event_type":"WindowOpened"' in payload else WindowClosed
    return model.model_validate_json(payload)


def request_for(proposal: Proposal, policy: PolicyDocument, charge: Charge | None = None) -> WindowRequest:
    """The book's request for a proposal: the offer's terms, or the closure, and the facts to record.
    `charge` is the proposal's `charge_of` (computed when not given): the request names the budget."""
    budget = charge.key if charge is not None else charge_of(proposal, policy).key
    score = proposal.score
    facts = score.facts
    segment = facts.segment if facts else "unknown"
    verdict = proposal.verdict
    offer = None
    if isinstance(verdict, Offer):
        offer = OfferTerms(
            limit=verdict.limit,
            el_rate=verdict.el_rate,
            margin=verdict.margin,
            apr=repr(verdict.apr),
            valid_until_ms=_ms(verdict.valid_until),
            programme=verdict.programme or "",
            part=verdict.programme_part,
            income_fraction=repr(verdict.basis.income_fraction) if verdict.basis.income_fraction else "",
        )
    defer = isinstance(verdict, Close) and verdict.reason == "maintenance" and verdict.retry_after is not None
    return WindowRequest(
        record=proposal.record_key,
        customer=score.customer_id,
        segment=segment,
        decision_id=str(proposal.decision_id),
        application_id=score.application_id,
        policy_version=proposal.policy_label,
        decided_at_ms=_ms(proposal.decided_at),
        budget=budget,
        offer=offer,
        category="" if offer else verdict.category,  # type: ignore[union-attr]
        reason="" if offer else verdict.reason,  # type: ignore[union-attr]
        supersedes=proposal.supersedes,
        fallback_of=score.application_id if proposal.record_key != score.application_id and proposal.trigger == "application" else "",
        redecides=score.application_id if proposal.trigger == "redecision" else (proposal.review.reviewed_record if proposal.review else ""),
        region=facts.region if facts else "",
        channel=facts.channel if facts else "",
        locale=facts.locale if facts else DEFAULT_LOCALE,
        partner=(facts.partner_id or "") if facts else "",
        model_id=score.model_id or "",
        deferred_score=score.model_dump_json() if defer else "",
        deferred_until_ms=_ms(verdict.retry_after) if defer else 0,  # type: ignore[union-attr]
    )


def close_request(record: str, *, trigger: str, reason: str, now: datetime) -> CloseRequest:
    """A lifecycle closure (expiry, pause) of the window `record` opened: category strategy."""
    return CloseRequest(record, str(closure_id(record, trigger)), "strategy", reason, trigger, _ms(now))


def decision_event(
    proposal: Proposal, posting: Posting, policy: PolicyDocument, now: datetime, *, period: str | None = None
) -> Decision:
    """`WindowOpened` or `WindowClosed`: the proposal as the book answered it (`posting`), at `now`.
    `period` is the label of the budget period it was charged to (`Charge.period`; worked out here
    when not given)."""
    score = proposal.score
    facts = score.facts
    envelope = {
        "key": proposal.decision_id,
        "producer": PRODUCER,
        "occurred_at": now,
        "correlation_id": score.application_id,
        # A decision on review is caused by the signed review decision, not by the score it reads.
        "causation_id": proposal.review.cause if proposal.review is not None else None,
    }
    common = {
        "decision_id": proposal.decision_id,
        "decision_seq": posting.seq,
        "application_id": score.application_id,
        "customer_id": score.customer_id,
        "segment": facts.segment if facts else None,
        "region": facts.region if facts else None,
        "channel": facts.channel if facts else None,
        "locale": facts.locale if facts else DEFAULT_LOCALE,
        "partner_id": facts.partner_id if facts else None,
        "policy_version": proposal.policy_label,
        "model_id": score.model_id,
        "trigger": proposal.trigger,
        "score_disclosed": policy.customer_care.show_score,
    }
    if proposal.review is not None:
        common |= {"reviewed_decision_id": proposal.review.reviewed_decision_id, "review_note": proposal.review.note or None}
    verdict = proposal.verdict
    if isinstance(verdict, Offer) and posting.granted > 0:
        basis = verdict.basis.model_copy(
            update={
                "budget_available": posting.available,
                "programme_part": posting.programme_part,
                "bound_by": "segment_budget" if posting.budget_bound else verdict.basis.bound_by,
                "budget_period": (budget_period(policy, facts.segment, proposal.charged_at) if period is None else period) or None
                if facts
                else None,
            }
        )
        return WindowOpened.caused_by(
            score,
            **envelope,  # type: ignore[arg-type]
            **common,
            limit=posting.granted,
            apr=verdict.apr,
            daily_rate=round(verdict.apr / 365, 6),
            valid_until=verdict.valid_until,
            grade=score.grade or "",
            pd=verdict.pd,
            points=score.points or 0.0,
            expected_loss=posting.expected_loss_fen / 100,
            basis=basis,
        )
    if isinstance(verdict, Offer):
        refusal = posting.refusal or "budget_exhausted"
        closed = Close("strategy", refusal, retry_after=_refusal_retry(proposal, policy, refusal, now))
    else:
        closed = verdict
    return WindowClosed.caused_by(
        score,
        **envelope,  # type: ignore[arg-type]
        **common,
        category=closed.category,
        reason=closed.reason,
        reasons=closed.reasons,
        recourse=closed.recourse,
        retry_after=closed.retry_after,
        grade=score.grade,
        pd=score.pd,
        points=score.points,
        threshold=closed.threshold,
    )


def _refusal_retry(proposal: Proposal, policy: PolicyDocument, refusal: str, now: datetime) -> datetime:
    """When to try again after the budget refused an offer: a spent budget refills when its period
    ends (the period the application was charged to); a paced offer or a newer application's window
    waits the policy's strategy delay, as does a budget for all time."""
    later = now + policy.timing.strategy_retry
    facts = proposal.score.facts
    budget = policy.budgets.get(facts.segment) if facts else None  # type: ignore[call-overload]
    if refusal != "budget_exhausted" or budget is None or budget.period is None:
        return later
    refill = period_span(budget.period, proposal.charged_at, policy.zone).end.astimezone(UTC)
    return refill if refill > now else later  # decided after it refilled already: the usual delay


def lifecycle_closure(facts: DecisionRecord, *, policy_label: str, retry_after: datetime | None = None) -> WindowClosed:
    """The `WindowClosed` announcing an expiry, a pause or a suspension closure recorded by the book."""
    closure = uuid.UUID(facts.closure_id)
    return WindowClosed(
        event_id=closure,
        correlation_id=facts.application_id,
        producer=PRODUCER,
        occurred_at=datetime.fromtimestamp(facts.closure_at / 1000, UTC),
        decision_id=closure,
        decision_seq=facts.closure_seq,
        application_id=facts.application_id,
        customer_id=facts.customer,
        segment=facts.segment if facts.segment in ("individual", "small_business") else None,  # type: ignore[arg-type]
        region=facts.region or None,
        channel=facts.channel or None,
        locale=facts.locale or DEFAULT_LOCALE,  # type: ignore[arg-type]
        partner_id=facts.partner or None,
        policy_version=policy_label,
        model_id=facts.model_id or None,
        trigger=facts.closure_trigger,  # type: ignore[arg-type]
        category=facts.closure_category,  # type: ignore[arg-type]
        reason=facts.closure_reason,
        closes_decision_id=uuid.UUID(facts.decision_id),
        retry_after=retry_after,
    )
