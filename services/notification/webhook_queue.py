"""The webhook queue: deliveries wait here, with their next-attempt time, until delivered. Pure.

Every place that keeps the queue runs these rules: the in-memory queue of the handler tests
(`memory_webhooks.py`) and the rebuild (`restored`). The Redis queue (`redis_webhooks.py`) runs
them atomically as Lua scripts, each the twin of a method here; `tests/e2e/test_notification_twins.py`
drives both through the same random streams and compares every reply and every value. Times are
milliseconds of the queue's clock, passed in: Redis's own TIME for the Redis queue, so replicas
with skewed clocks agree on what is due.

The state: each delivery (`QueuedDelivery`), when each waiting one is due, and the dead letters
whose delivery was queued again. The rules:

- **enqueue**: a delivery not seen before is `pending`, due now, with no attempt yet; one already
  there (waiting, or finished and not yet forgotten) is left alone.
- **requeue**: a delivery given up (`dead`, or forgotten) whose dead letter an operator replayed is
  queued again from scratch, due now, once per letter (the letter is remembered `TTL_S`); a
  delivery still pending or delivered is left alone.
- **claim**: the due deliveries, earliest first (ties by id), at most `limit` of them counting the
  finished ones met on the way (dropped from the queue); each is leased to the claimer's token
  until `lease_ms` from now (then another may claim it), and a pending one counts an attempt. The
  first attempt's time is kept: a claim answers the delivery's age since then (the retry budget
  counts from it).
- **settle** (lease holder only): `retry` keeps the error, gives up the lease and is due again
  after `delay_ms`; `delivered` or `failed` records the outcome (still leased: its event is
  published next).
- **finish** (lease holder only): a delivered delivery is `done`, a failed one `dead`; it leaves the
  queue, drops its body, notice and source, and is forgotten `TTL_S` later.

A delivery or letter past its time is gone, as Redis forgets the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from services.notification.ports import ClaimedDelivery, DeliverySource, WebhookDelivery

__all__ = ["TTL_S", "DeliveryQueue", "QueueState", "QueuedDelivery", "Replayed", "require_letters", "restored"]

TTL_S = 30 * 24 * 3600


@dataclass(slots=True)
class QueuedDelivery:
    """One delivery (Redis: the hash `wh:<notification_id>`); None: the field is absent."""

    state: str  # pending | delivered | failed | done | dead
    attempts: int
    partner: str
    customer: str
    decision: str
    correlation: str
    created: int  # ms
    body: bytes | None = None
    notice: bytes | None = None
    source: str | None = None  # DeliverySource as JSON
    replay_of: str | None = None
    lease: str | None = None
    last_error: str | None = None
    first: int | None = None  # ms of the first attempt's claim
    expires_at: int | None = None  # ms; None: kept until deleted

    @classmethod
    def of(cls, d: WebhookDelivery, now_ms: int, replay_of: str | None = None) -> QueuedDelivery:
        """A delivery queued afresh now: pending, no attempt yet."""
        return cls(
            state="pending", attempts=0, partner=d.partner_id, customer=d.customer_id, decision=d.decision_id,
            correlation=d.correlation_id, created=now_ms, body=d.body, notice=d.notice, source=d.source.to_json(),
            replay_of=replay_of,
        )  # fmt: skip


@dataclass(slots=True)
class Replayed:
    """A replayed dead letter whose delivery was queued again (Redis: `whr:<letter>`)."""

    notification_id: str
    expires_at: int  # ms


@dataclass
class QueueState:
    """Every value the queue holds."""

    deliveries: dict[str, QueuedDelivery] = field(default_factory=dict)
    due: dict[str, int] = field(default_factory=dict)  # notification id -> when it is due (ms)
    replayed: dict[str, Replayed] = field(default_factory=dict)  # dead letter id -> its requeue


def require_letters(deliveries: Sequence[WebhookDelivery]) -> None:
    """A requeue names the dead letter it queues each delivery again for."""
    for d in deliveries:
        if not d.replay_of:
            raise ValueError(f"delivery {d.notification_id} names no dead letter to requeue it for")


def restored(deliveries: Sequence[WebhookDelivery], now_ms: int) -> QueueState:
    """The queue a rebuild installs: the deliveries still owed, pending afresh and due now (the
    replayed letters the queue remembers are kept where they are)."""
    state = QueueState()
    for d in deliveries:
        state.deliveries[d.notification_id] = QueuedDelivery.of(d, now_ms)
        state.due[d.notification_id] = now_ms
    return state


class DeliveryQueue:
    """The queue in memory. Methods mirror the Lua scripts one to one."""

    def __init__(self, state: QueueState | None = None) -> None:
        self.state = state or QueueState()

    def install(self, restored: QueueState) -> None:
        """A rebuild's queue (`restored`) replaces the deliveries and their due times; the replayed
        letters stay remembered."""
        self.state = QueueState(restored.deliveries, restored.due, self.state.replayed)

    def _forget_expired(self, now_ms: int) -> None:
        deliveries, replayed = self.state.deliveries, self.state.replayed
        for key in [k for k, d in deliveries.items() if d.expires_at is not None and d.expires_at <= now_ms]:
            del deliveries[key]
        for key in [k for k, r in replayed.items() if r.expires_at <= now_ms]:
            del replayed[key]

    def enqueue(self, deliveries: Sequence[WebhookDelivery], now_ms: int) -> int:
        """Add deliveries not seen before, due now; how many were new."""
        self._forget_expired(now_ms)
        created = 0
        for d in deliveries:
            if d.notification_id not in self.state.deliveries:
                self.state.deliveries[d.notification_id] = QueuedDelivery.of(d, now_ms)
                self.state.due[d.notification_id] = now_ms
                created += 1
        return created

    def requeue(self, deliveries: Sequence[WebhookDelivery], now_ms: int) -> int:
        """Queue given-up deliveries again, once per `replay_of`; how many were queued."""
        self._forget_expired(now_ms)
        queued = 0
        for d in deliveries:
            held = self.state.deliveries.get(d.notification_id)
            if d.replay_of not in self.state.replayed and (held is None or held.state == "dead"):
                self.state.replayed[d.replay_of] = Replayed(d.notification_id, now_ms + TTL_S * 1000)
                self.state.deliveries[d.notification_id] = QueuedDelivery.of(d, now_ms, replay_of=d.replay_of)
                self.state.due[d.notification_id] = now_ms
                queued += 1
        return queued

    def claim(self, limit: int, lease_ms: int, token: str, now_ms: int) -> list[ClaimedDelivery]:
        """Take up to `limit` due deliveries, each leased to `token` for `lease_ms`."""
        self._forget_expired(now_ms)
        due = sorted((at, notification_id) for notification_id, at in self.state.due.items() if at <= now_ms)
        claimed = []
        for _, notification_id in (due[:limit] if limit >= 0 else due):  # Redis's LIMIT: a negative count takes all
            entry = self.state.deliveries.get(notification_id)
            if entry is None or entry.state in ("done", "dead"):
                del self.state.due[notification_id]
                continue
            self.state.due[notification_id] = now_ms + lease_ms
            entry.lease = token
            if entry.state == "pending":
                entry.attempts += 1
                if entry.attempts == 1:
                    entry.first = now_ms
            delivery = WebhookDelivery(
                notification_id=notification_id, partner_id=entry.partner, customer_id=entry.customer,
                decision_id=entry.decision, correlation_id=entry.correlation, body=entry.body or b"",
                notice=entry.notice or b"", source=DeliverySource.from_json(entry.source or ""),
                replay_of=entry.replay_of or "",
            )  # fmt: skip
            age_ms = now_ms - (entry.first if entry.first is not None else now_ms)
            claimed.append(
                ClaimedDelivery(delivery, entry.state, entry.attempts, token, entry.last_error or "", age_s=age_ms / 1000)  # type: ignore[arg-type]
            )
        return claimed

    def _held(self, notification_id: str, token: str) -> QueuedDelivery | None:
        entry = self.state.deliveries.get(notification_id)
        return entry if entry is not None and entry.lease == token else None

    def settle(self, notification_id: str, token: str, outcome: str, delay_ms: int, error: str, now_ms: int) -> bool:
        """Record a try's outcome; False if `token` does not hold the lease (another claimer has it)."""
        self._forget_expired(now_ms)
        entry = self._held(notification_id, token)
        if entry is None:
            return False
        entry.last_error = error
        if outcome == "retry":
            entry.lease = None
            self.state.due[notification_id] = now_ms + delay_ms
        else:
            entry.state = outcome
        return True

    def finish(self, notification_id: str, token: str, now_ms: int) -> bool:
        """Take a delivered or failed delivery out of the queue; False if `token` does not hold the lease."""
        self._forget_expired(now_ms)
        entry = self._held(notification_id, token)
        if entry is None:
            return False
        entry.state = "done" if entry.state == "delivered" else "dead"
        entry.lease = entry.body = entry.notice = entry.source = None
        self.state.due.pop(notification_id, None)
        entry.expires_at = now_ms + TTL_S * 1000
        return True
