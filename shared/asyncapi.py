"""The AsyncAPI document names the event payloads of every channel, subscribers included.

Handlers take raw records (`Annotated[list[Any], NoCast]`: the fleet decodes them itself, so a bad
record is dead-lettered instead of failing the batch), which leaves FastStream nothing to describe
a subscriber's message with. Every subscriber is titled `topic:EventA|EventB` instead; this module
reads the event types from that title and documents their JSON Schemas as the message payload,
the same way FastStream documents a publisher's `schema=`.
"""

from __future__ import annotations

from typing import Any

from fast_depends.pydantic._compat import create_model, get_config_base
from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber.specification import KafkaSubscriberSpecification
from faststream.specification.asyncapi.message import get_model_schema

from shared.contracts import EVENT_TYPES, Event

__all__ = ["EventSubscriberSpecification", "describe_events", "events_in_title"]


def events_in_title(title: str | None) -> list[type[Event]]:
    """The event types a subscriber's title names (`credit.windows:WindowOpened|WindowClosed`)."""
    if not title or ":" not in title:
        raise ValueError(f"subscriber title {title!r} does not name its events as `topic:EventA|EventB`")
    names = title.rsplit(":", 1)[1].split("|")
    unknown = [n for n in names if n not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"subscriber title {title!r} names unknown event types {unknown}; known: {sorted(EVENT_TYPES)}")
    return [EVENT_TYPES[n] for n in names]


class EventSubscriberSpecification(KafkaSubscriberSpecification):
    """A Kafka subscriber's specification whose message payload is the named events' schemas."""

    __slots__ = ("events",)

    def __init__(self, base: KafkaSubscriberSpecification, events: list[type[Event]]) -> None:
        super().__init__(base._outer_config, base.config, base.calls)
        self.events = events

    def get_payloads(self) -> list[tuple[dict[str, Any], str]]:
        payloads = []
        for model in self.events:
            body = get_model_schema(
                create_model("", __config__=get_config_base(), response__=(model, ...)),  # as FastStream does for `schema=`
                prefix=f"{self.config.title_}:Message",
            )
            payloads.append((body, model.EVENT_TYPE))
        return payloads


def describe_events(broker: KafkaBroker) -> None:
    """Document each subscriber's payload as the events its title names (raises on a title that names none)."""
    for subscriber in broker.subscribers:
        spec = subscriber.specification
        if isinstance(spec, KafkaSubscriberSpecification) and not isinstance(spec, EventSubscriberSpecification):
            subscriber.specification = EventSubscriberSpecification(spec, events_in_title(spec.config.title_))
