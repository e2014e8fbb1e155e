"""The partner webhook, as a protocol: what is sent, how it is signed, when to retry, when to give up. Pure.

A partner in `settings.webhook_partners` receives every decision on its customers' windows as an
HTTP POST of a JSON `WebhookPayload`, with these headers:

    Content-Type: application/json
    Idempotency-Key: <notification_id>            the same on every try: dedupe on it
    X-Creditwindow-Timestamp: <unix seconds>      when this try was signed
    X-Creditwindow-Signature: sha256=<hex>        HMAC-SHA256(partner's key, "<timestamp>." + body)
    X-Creditwindow-Attempt: <n>                   1 on the first try

Each partner has a key of its own, so no partner can sign a message another would accept.

A 2xx answer is a delivery. 408, 425, 429, 5xx, a timeout or a network error is retried with
exponential backoff and jitter (a `Retry-After` in seconds is honoured, within the backoff's
ceiling) for as long as the retry budget lasts, counted from the first try (hours: a partner may
be down for a night); any other answer (a 4xx the partner means, a redirect) is not retried. When
the budget is spent, or on an answer not retried, the decision goes to the dead-letter topic with
the reason and the partner (header `webhook_partner`); `creditwindow dlq replay` of that letter
re-publishes the decision with it, and the notification service queues the delivery again, once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.notification import PRODUCER
from services.notification.disclosure import Disclosure
from services.notification.ports import WebhookDelivery
from shared.contracts import Category, DeadLetter, Decision, WindowClosed, WindowOpened, deterministic_id
from shared.wire import REPLAY_HEADER

__all__ = [
    "REDELIVER_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Backoff",
    "Verdict",
    "WebhookPayload",
    "dead_letter_for_delivery",
    "judge",
    "notification_id",
    "sign",
    "signed_headers",
    "span",
    "verify",
    "webhook_payload",
]

SIGNATURE_HEADER = "X-Creditwindow-Signature"
TIMESTAMP_HEADER = "X-Creditwindow-Timestamp"
ATTEMPT_HEADER = "X-Creditwindow-Attempt"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# On a give-up's dead letter (and so on its replay): the partner whose delivery is to be queued again.
REDELIVER_HEADER = "webhook_partner"
_RETRIED_STATUSES = frozenset({408, 425, 429})


def notification_id(decision: Decision, channel: str) -> uuid.UUID:
    """Deterministic per decision and channel: every copy of one notification shares it."""
    return deterministic_id("notification", decision.decision_id, channel)


class WebhookPayload(BaseModel):
    """What a partner receives about a decision on one of its customers' windows, and nothing more.

    The partner gets what it needs to act on the decision and to show it to the customer: the ids
    that tie it to the application it passed on (application and pseudonymous customer id), the
    outcome and its terms (limit, price, validity, what set the limit) or the closure (category,
    rule, reason codes, when to try again), the message as the customer reads it in their language,
    and the decision reference and versions for an explanation or a review.

    Left out on purpose: the score, PD, risk grade and expected loss (the lender's risk view), the
    limit's basis beyond the rule that bound it (its parameters and the budget figures are the
    policy's and the portfolio's), the segment, and the recourse targets except as worded in `body`.
    """

    model_config = ConfigDict(frozen=True)

    type: Literal["window.opened", "window.closed"]
    notification_id: uuid.UUID = Field(description="Also the Idempotency-Key header: one per decision.")
    reference: str = Field(description="Decision reference the customer quotes for an explanation or review.")
    decision_id: uuid.UUID
    decision_seq: int = Field(description="Higher is newer, per customer: order by it, not by arrival.")
    decided_at: datetime
    trigger: str
    application_id: str
    customer_id: str = Field(description="Pseudonymous customer id.")
    partner_id: str
    locale: str
    title: str
    body: str = Field(description="The message as the customer reads it, plain text.")
    limit: int | None = Field(default=None, description="CNY, when opened.")
    currency: Literal["CNY"] = "CNY"
    apr: float | None = None
    daily_rate: float | None = None
    valid_until: datetime | None = None
    bound_by: str | None = Field(default=None, description="What set the limit: risk_grade, income_cap, ...")
    category: Category | None = None
    reason: str | None = Field(default=None, description="The rule that closed the window.")
    reason_codes: tuple[str, ...] = Field(default=(), description="Principal reasons (credit closures).")
    retry_after: datetime | None = None
    policy_version: str
    model_id: str | None = None


def webhook_payload(decision: Decision, disclosure: Disclosure, partner_id: str) -> WebhookPayload:
    common = {
        "notification_id": notification_id(decision, "webhook"),
        "reference": disclosure.reference,
        "decision_id": decision.decision_id,
        "decision_seq": decision.decision_seq,
        "decided_at": decision.occurred_at,
        "trigger": decision.trigger,
        "application_id": decision.application_id,
        "customer_id": decision.customer_id,
        "partner_id": partner_id,
        "locale": decision.locale,
        "title": disclosure.title,
        "body": disclosure.body,
        "policy_version": decision.policy_version,
        "model_id": decision.model_id,
    }
    if isinstance(decision, WindowOpened):
        return WebhookPayload(
            type="window.opened",
            limit=decision.limit,
            apr=decision.apr,
            daily_rate=decision.daily_rate,
            valid_until=decision.valid_until,
            bound_by=decision.basis.bound_by,
            **common,
        )
    assert isinstance(decision, WindowClosed)
    return WebhookPayload(
        type="window.closed",
        category=decision.category,
        reason=decision.reason,
        reason_codes=tuple(r.code for r in decision.reasons[:4]),
        retry_after=decision.retry_after,
        **common,
    )


# --- signing ----------------------------------------------------------------------------------------


def sign(key: bytes, timestamp: int, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over `<timestamp>.<body>`: the timestamp is signed too, so a
    captured request cannot be replayed later under a fresh timestamp."""
    digest = hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(key: bytes, timestamp: str, body: bytes, signature: str, *, now: int, tolerance_s: int = 300) -> bool:
    """What a partner checks: the signature matches and the timestamp is recent."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(key, int(timestamp), body), signature)


def signed_headers(key: bytes, *, body: bytes, idempotency_key: str, timestamp: int, attempt: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        IDEMPOTENCY_HEADER: idempotency_key,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(key, timestamp, body),
        ATTEMPT_HEADER: str(attempt),
    }


# --- retrying ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff between tries: initial, doubled each try, at most `max_s`, with jitter."""

    initial_s: float = 1.0
    max_s: float = 300.0
    jitter: float = 0.2

    def delay(self, attempt: int, *, spread: float = 0.0, retry_after_s: float | None = None) -> float:
        """Seconds to wait after try number `attempt` (1-based); `spread` in [0, 1) draws the jitter."""
        base = min(self.initial_s * 2 ** max(0, attempt - 1), self.max_s)
        delay = base * (1 + self.jitter * spread)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.max_s))
        return min(delay, self.max_s * (1 + self.jitter))


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Literal["delivered", "retry", "failed"]
    reason: str


def span(seconds: float) -> str:
    """A duration for a reason: `36 s`, `12 min`, `5.5 h`."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def judge(
    status: int | None, error: str | None, *, attempt: int, age_s: float, budget_s: float, next_delay_s: float
) -> Verdict:
    """What a try's answer means: delivered, worth another try, or given up (with the reason).

    `age_s` is how long ago the first try was; a retry that would come after the budget (`age_s +
    next_delay_s > budget_s`) is not made: the delivery is given up now, not at the next try.
    """
    if status is not None and 200 <= status < 300:
        return Verdict("delivered", f"HTTP {status}")
    reason = f"HTTP {status}" if status is not None else (error or "no answer")
    retriable = status is None or status >= 500 or status in _RETRIED_STATUSES
    if not retriable:
        return Verdict("failed", f"{reason}: not retried (the partner refused the request)")
    if age_s + next_delay_s > budget_s:
        return Verdict(
            "failed", f"{reason}: gave up after {attempt} attempts in {span(age_s)} (retry budget {span(budget_s)})"
        )
    return Verdict("retry", reason)


# --- the delivery and its dead letter ----------------------------------------------------------------


def dead_letter_for_delivery(delivery: WebhookDelivery, reason: str, *, attempts: int, at: datetime) -> DeadLetter:
    """The dead letter of a delivery given up: the original decision record, why it failed, and the
    partner (header `webhook_partner`), so a replay of the letter queues this delivery again.

    Its id is the same for every copy of one give-up; a delivery replayed and given up again leaves
    a letter of its own, which names the letter it was replayed from.
    """
    source = delivery.source
    headers = {k: v for k, v in source.headers.items() if k not in (REPLAY_HEADER, REDELIVER_HEADER)}
    parts = ("deadletter", "notification-webhook", delivery.notification_id)
    return DeadLetter(
        event_id=deterministic_id(*parts, delivery.replay_of) if delivery.replay_of else deterministic_id(*parts),
        correlation_id=delivery.correlation_id[:80],
        producer=PRODUCER,
        occurred_at=at,
        error=f"webhook to partner {delivery.partner_id} failed after {attempts} attempt(s): {reason}"[:2000],
        error_type="webhook_undeliverable",
        failed_by=PRODUCER,
        source_topic=source.topic,
        source_partition=source.partition,
        source_offset=source.offset,
        source_key=source.key,
        payload_b64=base64.b64encode(source.value).decode(),
        headers={**headers, REDELIVER_HEADER: delivery.partner_id},
        replayed_from=delivery.replay_of[:80] or None,
    )
