"""The split's migration: the retired mixed topics read once as history, each record copied to the topic
it belongs on now, or left where it is, and why. Pure: `creditwindow topics migrate` reads and copies.

Before the split, `credit.drawdowns` carried lending requests and results together and
`credit.reviews` review requests, results and operators' signed actions; an upstream app could write
a result there. The migration copies what the fleet needs as history to the topics only its writer
writes, each copy run by that writer's principal (docs/operations.md, "Splitting requests from
results"):

- `results` (run as the policy service's principal): the lending results to `credit.lending-results`
  and the review results to `credit.review-results`, each only when the fleet's own state vouches
  for it: a lending result whose balance the live book never held (a balance sequence above the
  book's, or the book's sequence with another balance) is not copied, nor a review opened that no
  request asked for, nor a review concluded without an operator's signed decision that verifies;
- `actions` (run as the operators' principal): the operators' signed actions to
  `credit.operator-actions`, each only when its signature verifies.

Requests are never copied: the old fleet answered them before it stopped (they stay readable where
they are). Every copy keeps the original bytes, key and headers, plus `migrated_from` (where it was):
rebuilds and the desk read it as history; consumers of news do not act on it again
(`shared/messaging/batches.py`). A record already copied (its `migrated_from` is on the destination)
is not copied twice, so the migration can be run again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from services.policy.windows.model import Balance
from shared.contracts import (
    LENDING_REQUESTS,
    LENDING_RESULTS,
    OPERATOR_ACTIONS,
    DrawdownOutcome,
    Event,
    OperatorAction,
    RepaymentApplied,
    ReviewConcluded,
    ReviewDecided,
    ReviewOpened,
    ReviewRequested,
    Topics,
)
from shared.messaging.topic_io import ReadRecord
from shared.references import normalise_reference
from shared.wire import HISTORY_HEADER, Record

__all__ = ["Part", "SplitPlan", "copied_already", "history_headers", "plan_split", "position"]

Part = Literal["results", "actions"]


@dataclass(slots=True)
class SplitPlan:
    """What one part of the migration copies (record, destination), what it refuses and why, what
    was copied by an earlier run, and what it leaves where it is (counts by event type)."""

    copies: list[tuple[Record, str]] = field(default_factory=list)
    refused: list[tuple[Record, str]] = field(default_factory=list)
    already: int = 0
    left: Counter[str] = field(default_factory=Counter)


def position(record: Record) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"


def history_headers(record: Record) -> list[tuple[str, bytes]]:
    """The original headers, and where the record was."""
    kept = [(k, v if isinstance(v, bytes) else str(v).encode()) for k, v in record.headers or () if k != HISTORY_HEADER]
    return [*kept, (HISTORY_HEADER, position(record).encode())]


def copied_already(records: Iterable[ReadRecord]) -> set[str]:
    """The positions earlier runs copied, from the `migrated_from` header of the destinations' records."""
    found: set[str] = set()
    for item in records:
        for key, value in item.record.headers or ():
            if key == HISTORY_HEADER:
                found.add(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
    return found


def plan_split(
    part: Part,
    history: Sequence[ReadRecord],
    topics: Topics,
    *,
    copied: set[str],
    verifies: Callable[[OperatorAction], str | None],
    balances: Mapping[str, Balance] | None = None,
) -> SplitPlan:
    """Plan one part over the retired topics' records (read as what they carried). `verifies` says why
    an operator's action does not verify (None: it does); `balances` is the live book's (results)."""
    plan = SplitPlan()
    events = [item.event for item in history if item.event is not None]
    asked = {(e.customer_id, normalise_reference(e.reference)) for e in events if isinstance(e, ReviewRequested)}
    decided = {e.review_id for e in events if isinstance(e, ReviewDecided) and verifies(e) is None}
    for item in history:
        record, event = item.record, item.event
        if event is None:
            if part == "results":  # said once, by the first part to run
                plan.refused.append((record, f"not readable as what the topic carried: {item.refused.error if item.refused else '?'}"))
            continue
        if isinstance(event, (*LENDING_REQUESTS, ReviewRequested)):
            plan.left[event.event_type] += 1  # answered by the old fleet before it stopped
            continue
        if isinstance(event, OPERATOR_ACTIONS) != (part == "actions"):
            continue  # the other part's
        destination, why = _destination(event, topics, asked=asked, decided=decided, verifies=verifies, balances=balances or {})
        if why is not None:
            plan.refused.append((record, why))
        elif position(record) in copied:
            plan.already += 1
        else:
            plan.copies.append((record, destination))
    return plan


def _destination(
    event: Event,
    topics: Topics,
    *,
    asked: set[tuple[str, str | None]],
    decided: set[object],
    verifies: Callable[[OperatorAction], str | None],
    balances: Mapping[str, Balance],
) -> tuple[str, str | None]:
    """Where a result or an action goes now, and why not (None: it goes)."""
    if isinstance(event, OPERATOR_ACTIONS):
        why = verifies(event)  # type: ignore[arg-type]
        return topics.operator_actions, (f"a {event.event_type} that does not verify: {why}" if why else None)
    if isinstance(event, LENDING_RESULTS):
        return topics.lending_results, _unvouched_balance(event, balances)  # type: ignore[arg-type]
    if isinstance(event, ReviewOpened):
        unasked = (event.customer_id, event.reference) not in asked
        return topics.review_results, (f"a review of {event.reference} opened that no request of its customer asked for" if unasked else None)
    if isinstance(event, ReviewConcluded):
        undecided = event.review_id not in decided
        return topics.review_results, (
            f"a review of {event.reference} concluded without an operator's signed decision that verifies" if undecided else None
        )
    return "", f"a {event.event_type} does not belong to the history of these topics"


def _unvouched_balance(event: DrawdownOutcome | RepaymentApplied, balances: Mapping[str, Balance]) -> str | None:
    """Why the live book contradicts a lending result (None: it does not): a balance sequence above
    the book's, or the book's sequence with another balance, is a balance the fleet never held."""
    book = balances.get(event.customer_id, Balance())
    if event.balance_seq > book.seq or (event.balance_seq == book.seq and event.balance != book.balance):
        return (
            f"a {event.event_type} the live book never took: balance {event.balance} at sequence {event.balance_seq}, "
            f"the book holds {book.balance} at {book.seq}"
        )
    return None
