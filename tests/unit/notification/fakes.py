"""Small stand-ins for the notification's webhook ports, recording what happened.

`FakeWebhookQueue` keeps the promises of the Redis queue (an enqueued delivery is kept once, a claim
leases it, only the lease holder settles or finishes it, a retry is due after its delay) so tests of
the announcer, the handler and the dispatcher can check how they use it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from services.notification.ports import Answer, ClaimedDelivery, WebhookDelivery


class RedisTime:
    """The queue's clock (Redis's own TIME, seconds), moved only when told: lease and backoff tests wait for no real time."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class _Entry:
    delivery: WebhookDelivery
    state: str = "pending"
    attempts: int = 0
    due: float = 0.0
    lease: str | None = None
    last_error: str = ""
    first: float | None = None


class FakeWebhookQueue:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.entries: dict[str, _Entry] = {}
        self.history: list[tuple[str, str]] = []  # (notification_id, what happened)
        self.replayed: set[str] = set()  # dead letters whose delivery was queued again

    async def enqueue(self, deliveries: Sequence[WebhookDelivery]) -> int:
        created = 0
        for delivery in deliveries:
            if delivery.notification_id not in self.entries:
                self.entries[delivery.notification_id] = _Entry(delivery, due=self.clock())
                self.history.append((delivery.notification_id, "enqueued"))
                created += 1
        return created

    async def requeue(self, deliveries: Sequence[WebhookDelivery]) -> int:
        queued = 0
        for delivery in deliveries:
            entry = self.entries.get(delivery.notification_id)
            if delivery.replay_of in self.replayed or (entry is not None and entry.state != "dead"):
                continue
            self.replayed.add(delivery.replay_of)
            self.entries[delivery.notification_id] = _Entry(delivery, due=self.clock())
            self.history.append((delivery.notification_id, f"requeued:{delivery.replay_of}"))
            queued += 1
        return queued

    async def claim(self, limit: int, lease_ms: int) -> list[ClaimedDelivery]:
        now = self.clock()
        due = sorted(
            (e for e in self.entries.values() if e.state in ("pending", "delivered", "failed") and e.due <= now),
            key=lambda e: e.due,
        )[:limit]
        token = uuid.uuid4().hex
        out = []
        for entry in due:
            entry.due = now + lease_ms / 1000
            entry.lease = token
            if entry.state == "pending":
                entry.attempts += 1
                if entry.first is None:
                    entry.first = now
            self.history.append((entry.delivery.notification_id, f"claimed:{entry.state}:{entry.attempts}"))
            age = now - (entry.first if entry.first is not None else now)
            out.append(ClaimedDelivery(entry.delivery, entry.state, entry.attempts, token, entry.last_error, age_s=age))  # type: ignore[arg-type]
        return out

    async def settle(self, claimed: ClaimedDelivery, outcome: str, *, delay_ms: int = 0, error: str = "") -> bool:
        entry = self.entries[claimed.delivery.notification_id]
        if entry.lease != claimed.token:
            return False
        entry.last_error = error
        if outcome == "retry":
            entry.lease = None
            entry.due = self.clock() + delay_ms / 1000
        else:
            entry.state = outcome
        self.history.append((claimed.delivery.notification_id, f"settled:{outcome}"))
        return True

    async def finish(self, claimed: ClaimedDelivery) -> bool:
        entry = self.entries[claimed.delivery.notification_id]
        if entry.lease != claimed.token:
            return False
        entry.state = "done" if entry.state == "delivered" else "dead"
        entry.lease = None
        self.history.append((claimed.delivery.notification_id, f"finished:{entry.state}"))
        return True

    def states(self) -> dict[str, str]:
        return {k: e.state for k, e in self.entries.items()}


@dataclass
class FakeSender:
    """Answers each POST from a script (the last answer repeats), recording every request."""

    answers: list[Answer] = field(default_factory=lambda: [Answer(200)])
    attempt_bound_s: float = 1.0
    posts: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        self.posts.append((url, body, dict(headers)))
        return self.answers[min(len(self.posts), len(self.answers)) - 1]
