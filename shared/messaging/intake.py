"""A consumed batch, split into decoded events (with their records) and refused records; the refused dead-lettered."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from shared.contracts import Event
from shared.messaging.retries import retry_transient
from shared.ports import EventPublisher
from shared.settings import Settings
from shared.wire import Record, RefusedRecord, decode, header

__all__ = ["Intake", "intake", "take"]

E = TypeVar("E", bound=Event)


@dataclass(slots=True)
class Intake(Generic[E]):
    """A batch split into decoded events (with their records) and refused records."""

    events: list[tuple[Record, E]] = field(default_factory=list)
    refused: list[RefusedRecord] = field(default_factory=list)


def intake(records: Iterable[Any], accepted: Sequence[type[E]], ignored: Sequence[type[Event]] = ()) -> Intake[E]:
    """`ignored`: event types that share the topic and are not this consumer's (e.g. its own outputs):
    skipped, neither decoded (when the header names them) nor refused."""
    result: Intake[E] = Intake()
    skip = {model.EVENT_TYPE for model in ignored}
    models = (*accepted, *ignored)
    for raw in records:
        record = Record.of(raw)
        if skip and header(record, "event_type") in skip:
            continue
        decoded = decode(record, models)
        if isinstance(decoded, RefusedRecord):
            result.refused.append(decoded)
        elif decoded.EVENT_TYPE not in skip:
            result.events.append((record, decoded))  # type: ignore[arg-type]
    return result


async def take(
    records: Iterable[Any],
    accepted: Sequence[type[E]],
    *,
    publisher: EventPublisher,
    settings: Settings,
    ignored: Sequence[type[Event]] = (),
) -> Intake[E]:
    """Decode a batch and dead-letter what is refused (transient faults retried): what every handler does first."""
    batch = intake(records, accepted, ignored)
    await retry_transient(
        lambda: publisher.dead_letter(settings.topics.deadletter, batch.refused), settings=settings, what="dead_letter"
    )
    return batch
