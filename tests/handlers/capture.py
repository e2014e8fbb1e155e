"""A test subscriber that records what a handler published on a topic, decoded."""

from __future__ import annotations

from typing import Annotated, Any

from faststream.kafka import KafkaBroker
from faststream.params import NoCast

from shared.contracts import EVENT_TYPES, Event
from shared.messaging import raw_records
from shared.wire import Record, decode


class Captured:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def capture(broker: KafkaBroker, *topics: str) -> Captured:
    captured = Captured()

    @broker.subscriber(*topics, batch=True, decoder=raw_records, group_id="test-capture")
    async def record(records: Annotated[list[Any], NoCast]) -> None:
        for raw in records:
            decoded = decode(Record(raw.topic, raw.partition, raw.offset, raw.key, raw.value, tuple(raw.headers or ())), EVENT_TYPES.values())
            assert isinstance(decoded, Event), decoded
            captured.events.append(decoded)

    return captured
