"""What the notification logic needs from outside, and the values that cross: one module.

The logic (`announcing.py`, `dispatching.py`, `channels.py`, `webhooks.py`) imports from here, never
from an adapter. The ledger's and the webhook queue's rules are pure (`ledger.py`, `webhook_queue.py`);
Redis runs them as Lua twins (`redis_ledger.py`, `redis_webhooks.py`), the tests in memory
(`memory_ledger.py`, `memory_webhooks.py`); httpx posts to partners (`http_webhook.py`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from shared.ports import EventPublisher

__all__ = [
    "Answer",
    "Claim",
    "ClaimedDelivery",
    "DeliverySource",
    "EventPublisher",
    "Ledger",
    "Partner",
    "WebhookDelivery",
    "WebhookOutbox",
    "WebhookQueue",
    "WebhookSender",
]


@dataclass(frozen=True, slots=True)
class Claim:
    """The ledger's answer for one decision: tell it (fresh), publish the kept notice again (again),
    or nothing (done: told already; stale: the customer has heard of a newer decision)."""

    state: Literal["fresh", "again", "done", "stale"]
    stored_event: bytes | None = None


@dataclass(frozen=True, slots=True)
class DeliverySource:
    """Where the decision came from: kept so a dead letter points at the original record."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: dict[str, str]

    def to_json(self) -> str:
        return json.dumps(
            {
                "topic": self.topic,
                "partition": self.partition,
                "offset": self.offset,
                "key": self.key,
                "value_b64": base64.b64encode(self.value).decode(),
                "headers": self.headers,
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> DeliverySource:
        data = json.loads(raw)
        return cls(
            topic=data["topic"],
            partition=int(data["partition"]),
            offset=int(data["offset"]),
            key=data.get("key"),
            value=base64.b64decode(data["value_b64"]),
            headers=dict(data.get("headers") or {}),
        )


@dataclass(frozen=True, slots=True)
class Partner:
    """A partner's webhook: its URL and the HMAC key that it alone shares with us."""

    url: str
    key: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One decision to POST to one partner, with the NotificationSent to publish once it is delivered.

    `replay_of` is the dead letter an operator replayed to queue it again (empty the first time).
    """

    notification_id: str
    partner_id: str
    customer_id: str
    decision_id: str
    correlation_id: str
    body: bytes
    notice: bytes
    source: DeliverySource
    replay_of: str = ""


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery a dispatcher holds the lease of: `state` says what is left to do with it.

    pending: POST it (this is try number `attempts`); delivered: publish its NotificationSent;
    failed: publish its dead letter. Only the holder of `token` may settle or finish it. `age_s` is
    how long ago its first try was claimed (by the queue's clock): the retry budget counts from it.
    """

    delivery: WebhookDelivery
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    token: str
    last_error: str = ""
    age_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Answer:
    """A partner's answer to one try: an HTTP status, or the error that kept it from answering."""

    status: int | None
    error: str | None = None
    retry_after_s: float | None = None


class Ledger(Protocol):
    """Which decisions were announced (Redis in production, memory in handler tests)."""

    async def claim(self, decisions: Sequence[tuple[str, str, int]]) -> list[Claim]:
        """Claim (id, customer, sequence) triples in order; sequence -1 is never stale (drawdown outcomes)."""
        ...

    async def remember(self, notices: Sequence[tuple[str, bytes]]) -> None:
        """Keep each notice to publish; returns once the claims so far are durable (published next)."""
        ...

    async def mark_published(self, decision_ids: Sequence[str]) -> None: ...


class WebhookOutbox(Protocol):
    """Where webhook deliveries wait for the dispatcher. `enqueue` ignores a delivery already there."""

    async def enqueue(self, deliveries: Sequence[WebhookDelivery]) -> int: ...

    async def requeue(self, deliveries: Sequence[WebhookDelivery]) -> int:
        """Queue given-up deliveries again, each once per `replay_of` (the dead letter replayed).

        A delivery still pending or delivered is left alone; returns how many were queued again.
        """
        ...


class WebhookQueue(WebhookOutbox, Protocol):
    """Durable deliveries with next-attempt times and leases (Redis in production)."""

    async def claim(self, limit: int, lease_ms: int) -> list[ClaimedDelivery]: ...

    async def settle(self, claimed: ClaimedDelivery, outcome: str, *, delay_ms: int = 0, error: str = "") -> bool: ...

    async def finish(self, claimed: ClaimedDelivery) -> bool: ...


class WebhookSender(Protocol):
    """One POST to a partner (httpx in production)."""

    @property
    def attempt_bound_s(self) -> float: ...

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer: ...
