"""Rebuilding the book from `credit.windows`: Redis is derived state, the topic is the truth. Pure.

`derive` replays the published decisions, per customer in sequence order, through the book's own
rules (`Book.restore`, `Book.restore_closure`): what each decision reserved, which window it
superseded, which closure released it. The result is the `BookState` the store would hold; the Redis
adapter writes it (`RedisBook.replace`) or compares it with the live one (`RedisBook.snapshot`).

Maintenance deferrals still waiting are rebuilt too, with the scores they were closed on (read from
`credit.scores` by the caller, from the oldest such closure on). The notification ledger belongs to
the notification service, which rebuilds it from its own topics.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime

from services.policy.lending.drawdowns import movement_of
from services.policy.windows.book import Book, budget_key
from services.policy.windows.decisions import record_key
from services.policy.windows.model import BookState, CloseRequest, DecisionRecord, WindowEntry
from shared.contracts import Decision, DrawdownOutcome, RepaymentApplied, ScoreComputed, WindowClosed, WindowOpened

__all__ = ["deferred_since", "derive", "waiting_deferrals"]


def _ms(value: object) -> int:
    return int(value.timestamp() * 1000)  # type: ignore[attr-defined]


_DECIDED = ("application", "redecision", "review")  # decisions of their own record; the others close a record


def _record_key(decision: Decision, by_decision: dict[str, str]) -> str | None:
    if decision.trigger in ("application", "redecision"):
        unread = isinstance(decision, WindowClosed) and decision.reason == "application_invalid"
        return record_key(decision.application_id, decision.trigger, unreadable=unread)
    if decision.trigger == "review":
        return record_key(decision.application_id, "review", reviewed=str(decision.reviewed_decision_id))
    closes = getattr(decision, "closes_decision_id", None)
    return by_decision.get(str(closes)) if closes else None


def derive(
    decisions: Iterable[Decision],
    scores: Mapping[uuid.UUID, ScoreComputed] | None = None,
    movements: Iterable[DrawdownOutcome | RepaymentApplied] = (),
) -> BookState:
    """Replay decisions in sequence order per customer; the first copy of a decision wins.

    `scores` (by event id) give back the maintenance deferrals still waiting: an application closed
    for maintenance and not yet decided again is deferred again, with the score it was closed on.
    `movements` (the outcomes on `credit.drawdowns`) give back each customer's balance (the outcome
    with the highest balance sequence) and each drawdown's and repayment's answer, by its id.
    """
    decisions = list(decisions)
    book = Book()
    by_decision: dict[str, str] = {}
    seen: set[str] = set()
    for decision in sorted(decisions, key=lambda d: (d.customer_id, d.decision_seq)):
        if str(decision.decision_id) in seen:
            continue  # a redelivered copy
        seen.add(str(decision.decision_id))
        record = _record_key(decision, by_decision)
        customer = decision.customer_id
        if record is None:
            book.state.seqs[customer] = max(book.state.seqs.get(customer, 0), decision.decision_seq)
            continue
        if decision.trigger in _DECIDED:
            by_decision[str(decision.decision_id)] = record
            _restore(book, decision, record, by_decision)
        else:
            assert isinstance(decision, WindowClosed)
            by_decision[str(decision.decision_id)] = record  # a review of the closure is ordered as the window it closed
            request = CloseRequest(record, str(decision.decision_id), decision.category, decision.reason, decision.trigger, _ms(decision.occurred_at))
            book.restore_closure(request, decision.decision_seq, customer)
    for record, (until, score_id) in waiting_deferrals(book.state, by_decision, decisions).items():
        score = (scores or {}).get(score_id)
        if score is not None:
            book.state.records[record].deferred_score = score.model_dump_json()
            book.state.deferred[record] = until
    for outcome in movements:
        movement_id, movement = movement_of(outcome)
        book.restore_movement(movement_id, movement)
    return book.state


def waiting_deferrals(
    state: BookState, by_decision: Mapping[str, str], decisions: Iterable[Decision]
) -> dict[str, tuple[int, uuid.UUID]]:
    """Maintenance closures not decided again yet: record -> (when to decide again, the score's event id)."""
    waiting = {}
    for decision in decisions:
        if (
            isinstance(decision, WindowClosed) and decision.trigger == "application" and decision.reason == "maintenance"
            and decision.retry_after is not None and decision.causation_id is not None
            and f"{decision.application_id}~r" not in state.records
        ):  # fmt: skip
            record = by_decision.get(str(decision.decision_id), decision.application_id)
            waiting[record] = (_ms(decision.retry_after), decision.causation_id)
    return waiting


def deferred_since(decisions: Iterable[Decision]) -> datetime | None:
    """When the oldest maintenance closure that may still wait was decided: scores are read from there."""
    times = [
        d.occurred_at
        for d in decisions
        if isinstance(d, WindowClosed) and d.reason == "maintenance" and d.trigger == "application"
    ]
    return min(times) if times else None


def _restore(book: Book, decision: Decision, record: str, by_decision: Mapping[str, str]) -> None:
    opened = isinstance(decision, WindowOpened)
    segment = decision.segment or "unknown"
    entry = DecisionRecord(
        seq=decision.decision_seq,
        granted=decision.limit if opened else 0,  # type: ignore[union-attr]
        status="open" if opened else "closed",
        customer=decision.customer_id,
        segment=segment,
        decision_id=str(decision.decision_id),
        application_id=decision.application_id,
        policy_version=decision.policy_version,
        part=decision.basis.programme_part if opened else 0,  # type: ignore[union-attr]
        el_fen=round(decision.expected_loss * 100) if opened else 0,  # type: ignore[union-attr]
        programme=(decision.basis.programme or "") if opened else "",  # type: ignore[union-attr]
        budget=budget_key(segment, decision.basis.budget_period or "") if opened else "",  # type: ignore[union-attr]
        region=decision.region or "",
        channel=decision.channel or "",
        locale=decision.locale,
        partner=decision.partner_id or "",
        model_id=decision.model_id or "",
        decided_at=_ms(decision.occurred_at),
        published=True,
    )
    system_closure = isinstance(decision, WindowClosed) and decision.category == "system"
    # A re-decision, or a decision on review, is ordered as the decision it decides again.
    original = None
    if decision.trigger == "redecision":
        original = book.state.records.get(decision.application_id)
    elif decision.trigger == "review" and decision.reviewed_decision_id is not None:
        reviewed = by_decision.get(str(decision.reviewed_decision_id))
        original = book.state.records.get(reviewed) if reviewed else None
    window = None
    if not system_closure:
        window = WindowEntry(
            status="open" if opened else "closed",
            limit=decision.limit if opened else 0,  # type: ignore[union-attr]
            apr=repr(decision.apr) if opened else "",  # type: ignore[union-attr]
            valid_until=_ms(decision.valid_until) if opened else None,  # type: ignore[union-attr]
            decision_id=str(decision.decision_id),
            decision_seq=decision.decision_seq,
            policy_version=decision.policy_version,
            record=record,
            application_id=decision.application_id,
            segment=segment,
            category="" if opened else decision.category,  # type: ignore[union-attr]
            reason="" if opened else decision.reason,  # type: ignore[union-attr]
            origin_seq=original.seq if original is not None else decision.decision_seq,
            income_fraction=repr(decision.basis.income_fraction) if opened and decision.basis.income_fraction else "",  # type: ignore[union-attr]
        )
    book.restore(record, entry, window, (window.valid_until or 0) if window else 0)
