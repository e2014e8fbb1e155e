"""A webhook given up is queued again from its decision on the log, never from the dead letter's bytes."""

from __future__ import annotations

import base64

from services.notification.channels import webhook_delivery_for
from services.notification.disclosure import render
from services.notification.ports import DeliverySource
from services.notification.redelivery import redelivery
from services.notification.webhooks import dead_letter_for_delivery
from shared.contracts import DeadLetter, Decision
from shared.wire import Record, encode
from tests.clocks import NOW
from tests.unit.notification.factories import drawdown, opened


def _given_up(decision: Decision, at: tuple[str, int, int] = ("credit.windows", 2, 41)) -> tuple[Record, DeadLetter]:
    message = encode(decision)
    record = Record(*at, message.key, message.value, tuple((k, v.encode()) for k, v in message.headers.items()))
    source = DeliverySource(*at, message.key.decode(), message.value, message.headers)
    delivery = webhook_delivery_for(decision, render(decision), source, {"p1"}, at=NOW)
    assert delivery is not None
    return record, dead_letter_for_delivery(delivery, "HTTP 503: gave up after 3 attempts", attempts=3, at=NOW)


def test_the_decision_at_the_letters_position_is_queued_again_for_its_partner_naming_the_letter() -> None:
    decision = opened(partner_id="p1")
    record, letter = _given_up(decision)
    delivery = redelivery(letter, record, decision, at=NOW)
    assert not isinstance(delivery, str)
    assert (delivery.partner_id, delivery.decision_id, delivery.replay_of) == ("p1", str(decision.decision_id), str(letter.event_id))
    assert (delivery.source.topic, delivery.source.offset, delivery.source.value) == ("credit.windows", 41, record.value)
    first = webhook_delivery_for(decision, render(decision), delivery.source, {"p1"}, at=NOW)
    assert first is not None and delivery.notification_id == first.notification_id  # the partner dedupes on the same key


def test_a_letter_whose_bytes_are_not_the_record_at_its_position_queues_nothing() -> None:
    decision = opened(partner_id="p1")
    record, letter = _given_up(decision)
    forged = encode(decision.model_copy(update={"limit": 200_000})).value
    crafted = letter.model_copy(update={"payload_b64": base64.b64encode(forged).decode()})
    assert redelivery(crafted, record, decision, at=NOW) == (
        "the letter's bytes are not the record at credit.windows[2]@41: nothing is queued from a letter's bytes"
    )


def test_another_partner_another_position_or_no_decision_there_queues_nothing() -> None:
    decision = opened(partner_id="p1")
    record, letter = _given_up(decision)
    other_partner = letter.model_copy(update={"headers": {**letter.headers, "webhook_partner": "p2"}})
    assert redelivery(other_partner, record, decision, at=NOW) == "partner 'p2' is not the decision's ('p1')"
    elsewhere = letter.model_copy(update={"source_offset": 40})
    assert redelivery(elsewhere, record, decision, at=NOW) == "nothing at credit.windows[2]@40"
    assert redelivery(letter, None, None, at=NOW) == "nothing at credit.windows[2]@41"
    outcome = drawdown("en")
    assert redelivery(letter, record, outcome, at=NOW) == "the record at credit.windows[2]@41 is not a decision"
    not_a_webhook = letter.model_copy(update={"error_type": "unrenderable"})
    assert redelivery(not_a_webhook, record, decision, at=NOW) == "not a webhook given up (unrenderable)"
