"""Ports every service's logic shares: where events go. The Kafka outbox implements it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from shared.contracts import Event
from shared.wire import RefusedRecord

__all__ = ["EventPublisher"]


class EventPublisher(Protocol):
    """Publishes events keyed by customer and returns once the broker has acknowledged every one."""

    async def publish(self, items: Iterable[tuple[str, Event]]) -> int:
        """Publish (topic, event) pairs; returns how many were sent."""
        ...

    async def dead_letter(self, topic: str, refused: Iterable[RefusedRecord]) -> int:
        """Publish a dead letter (reason, source position, original bytes) for each refused record."""
        ...
