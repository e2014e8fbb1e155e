"""The webhook queue in this process's memory: a `WebhookQueue` over `webhook_queue.DeliveryQueue`.

The handler tests queue and dispatch deliveries with it: the same rules as the Redis queue, held
equal to it by `tests/e2e/test_notification_twins.py`. `clock` stands for Redis's TIME (what is
due, leases, backoff, the retry budget's age): a test that moves it waits for no real time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from services.notification.ports import ClaimedDelivery, WebhookDelivery
from services.notification.webhook_queue import DeliveryQueue, require_letters
from shared.clock import Clock

__all__ = ["MemoryWebhookQueue"]


class MemoryWebhookQueue:
    def __init__(self, clock: Clock) -> None:
        self.queue = DeliveryQueue()
        self.clock = clock

    def _now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    async def enqueue(self, deliveries: Sequence[WebhookDelivery]) -> int:
        return self.queue.enqueue(deliveries, self._now_ms())

    async def requeue(self, deliveries: Sequence[WebhookDelivery]) -> int:
        require_letters(deliveries)
        return self.queue.requeue(deliveries, self._now_ms())

    async def claim(self, limit: int, lease_ms: int) -> list[ClaimedDelivery]:
        return self.queue.claim(limit, lease_ms, uuid.uuid4().hex, self._now_ms())

    async def settle(self, claimed: ClaimedDelivery, outcome: str, *, delay_ms: int = 0, error: str = "") -> bool:
        return self.queue.settle(claimed.delivery.notification_id, claimed.token, outcome, delay_ms, error, self._now_ms())

    async def finish(self, claimed: ClaimedDelivery) -> bool:
        return self.queue.finish(claimed.delivery.notification_id, claimed.token, self._now_ms())

    def states(self) -> dict[str, str]:
        """Each delivery's state (pending, delivered, failed, done, dead), by notification id."""
        return {notification_id: entry.state for notification_id, entry in self.queue.state.deliveries.items()}
