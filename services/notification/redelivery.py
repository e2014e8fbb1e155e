"""A webhook given up, delivered again: from the decision on the log, never from the dead letter's bytes. Pure.

A delivery given up leaves a dead letter (`webhooks.dead_letter_for_delivery`) that names where its
decision is on `credit.windows` and the partner (header `webhook_partner`). `creditwindow dlq replay`
does not publish that letter anywhere (a dead letter never becomes a result): it reads the record at
the letter's position, and `redelivery` checks that the letter is that record's (the same bytes), that
the record is a decision, and that the partner is the decision's own; only then is the delivery built
from the decision, as the announcer built it, and queued again once for this letter
(`WebhookOutbox.requeue`). A letter crafted to name another position, other bytes or another
partner queues nothing.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import datetime

from services.notification.announcing import source_of
from services.notification.channels import webhook_delivery_for
from services.notification.disclosure import render
from services.notification.ports import WebhookDelivery
from services.notification.webhooks import REDELIVER_HEADER
from shared.contracts import DeadLetter, Decision, Event
from shared.wire import Record

__all__ = ["GIVEN_UP", "redelivery"]

GIVEN_UP = "webhook_undeliverable"  # the error type of a delivery's dead letter


def redelivery(letter: DeadLetter, record: Record | None, event: Event | None, *, at: datetime) -> WebhookDelivery | str:
    """The delivery to queue again for `letter`, or why none: `record` is what the decisions' topic
    holds at the letter's position (None: nothing there), `event` that record read as a decision."""
    where = f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}"
    if letter.error_type != GIVEN_UP:
        return f"not a webhook given up ({letter.error_type})"
    if record is None or (record.topic, record.partition, record.offset) != (letter.source_topic, letter.source_partition, letter.source_offset):
        return f"nothing at {where}"
    if letter.payload_truncated or base64.b64decode(letter.payload_b64) != (record.value or b""):
        return f"the letter's bytes are not the record at {where}: nothing is queued from a letter's bytes"
    if not isinstance(event, Decision):
        return f"the record at {where} is not a decision"
    partner = letter.headers.get(REDELIVER_HEADER)
    if not partner or partner != event.partner_id:
        return f"partner {partner!r} is not the decision's ({event.partner_id!r})"
    delivery = webhook_delivery_for(event, render(event), source_of(record), {partner}, at=at)
    assert delivery is not None  # the decision's own partner
    return replace(delivery, replay_of=str(letter.event_id))
