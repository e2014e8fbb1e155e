"""A consumed batch, split into decoded events (with their records) and refused records; the refused dead-lettered."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from shared.contracts import Event
from shared.messaging.retries import retry_transient
from shared.ports import EventPublisher
from shared.settings import Settings
from shared.wire import Record, RefusedRecord, decode

__all__ = ["Intake", "intake", "take"]

E = TypeVar("E", bound=Event)


@dataclass(slots=True)
class Intake(Generic[E]):
    """A batch split into decoded events (with their records) and refused records."""

    events: list[tuple[Record, E]] = field(default_factory=list)
    refused: list[RefusedRecord] = field(default_factory=list)


def intake(records: Iterable[Any], accepted: Sequence[type[E]]) -> Intake[E]:
    """Decode each record into one of `accepted` (the event types its topic carries), or refuse it:
    an event of another type, a result on a request topic above all, is refused, never skipped."""
    result: Intake[E] = Intake()
    for raw in records:
        record = Record.of(raw)
        decoded = decode(record, accepted)
        if isinstance(decoded, RefusedRecord):
            result.refused.append(decoded)
        else:
            result.events.append((record, decoded))  # type: ignore[arg-type]
    return result


async def take(
    records: Iterable[Any],
    accepted: Sequence[type[E]],
    *,
    publisher: EventPublisher,
    settings: Settings,
) -> Intake[E]:
    """Decode a batch and dead-letter what is refused (transient faults retried): what every handler does first."""
    batch = intake(records, accepted)
    await retry_transient(
        lambda: publisher.dead_letter(settings.topics.deadletter, batch.refused), settings=settings, what="dead_letter"
    )
    return batch
