"""The partner webhook as a protocol: payload, signature, retry verdicts, backoff, dead letter."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest

from services.notification.channels import notification_for, webhook_delivery_for
from services.notification.disclosure import render
from services.notification.ports import DeliverySource
from services.notification.webhooks import (
    Backoff,
    dead_letter_for_delivery,
    judge,
    sign,
    signed_headers,
    verify,
    webhook_payload,
)
from tests.clocks import NOW
from tests.unit.notification.factories import closed, opened

KEY = b"k"
SOURCE = DeliverySource(
    "credit.windows", 2, 41, "cus_gold00000001", b'{"event_type":"WindowOpened"}', {"event_type": "WindowOpened"}
)


def test_a_signature_verifies_only_for_the_same_key_body_and_a_recent_timestamp() -> None:
    body = b'{"a":1}'
    signature = sign(KEY, 1_000_000, body)
    assert signature.startswith("sha256=")
    assert verify(KEY, "1000000", body, signature, now=1_000_010)
    assert not verify(KEY, "1000000", b'{"a":2}', signature, now=1_000_010)
    assert not verify(b"other", "1000000", body, signature, now=1_000_010)
    assert not verify(KEY, "1000001", body, signature, now=1_000_010)  # the timestamp is signed too
    assert not verify(KEY, "1000000", body, signature, now=1_000_000 + 301)  # too old: a replay


def test_each_try_carries_the_idempotency_key_timestamp_signature_and_attempt() -> None:
    headers = signed_headers(KEY, body=b"{}", idempotency_key="n-1", timestamp=1_000_000, attempt=3)
    assert headers["Idempotency-Key"] == "n-1"
    assert headers["X-Creditwindow-Timestamp"] == "1000000"
    assert headers["X-Creditwindow-Signature"] == sign(KEY, 1_000_000, b"{}")
    assert headers["X-Creditwindow-Attempt"] == "3"


HOUR = 3600.0


@pytest.mark.parametrize(
    ("status", "error", "age_s", "outcome"),
    [
        (200, None, 0, "delivered"),
        (204, None, 30 * HOUR, "delivered"),
        (503, None, 0, "retry"),
        (500, None, 20 * HOUR, "retry"),
        (429, None, 0, "retry"),
        (408, None, 0, "retry"),
        (None, "timeout after 2 s", 0, "retry"),
        (503, None, 24 * HOUR - 60, "failed"),  # the next try would come after the budget
        (None, "ConnectError", 24 * HOUR, "failed"),
        (400, None, 0, "failed"),
        (410, None, 0, "failed"),
        (302, None, 0, "failed"),
    ],
)
def test_an_answer_is_delivered_retried_or_given_up_by_the_retry_budget(
    status: int | None, error: str | None, age_s: float, outcome: str
) -> None:
    verdict = judge(status, error, attempt=7, age_s=age_s, budget_s=24 * HOUR, next_delay_s=900)
    assert verdict.outcome == outcome
    if outcome == "failed":
        assert (str(status) if status else error) in verdict.reason  # type: ignore[operator]


def test_a_give_up_by_the_budget_says_how_many_tries_over_how_long() -> None:
    verdict = judge(500, None, attempt=41, age_s=23.9 * HOUR, budget_s=24 * HOUR, next_delay_s=900)
    assert verdict.reason == "HTTP 500: gave up after 41 attempts in 23.9 h (retry budget 24.0 h)"


def test_over_a_budget_of_hours_the_waits_grow_to_the_ceiling_with_jitter() -> None:
    backoff = Backoff(initial_s=1, max_s=900, jitter=0.2)
    waits = [backoff.delay(n, spread=0.5) for n in range(1, 40)]
    assert waits[:3] == [1.1, 2.2, 4.4] and max(waits) == 900 * 1.1
    tries_in_a_day, elapsed = 0, 0.0
    for wait in [backoff.delay(n) for n in range(1, 1000)]:
        if elapsed > 24 * HOUR:
            break
        tries_in_a_day, elapsed = tries_in_a_day + 1, elapsed + wait
    assert 90 < tries_in_a_day < 110  # about four an hour once at the ceiling, not a storm


def test_backoff_doubles_up_to_its_ceiling_with_bounded_jitter() -> None:
    backoff = Backoff(initial_s=1, max_s=10, jitter=0.2)
    assert [backoff.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert backoff.delay(2, spread=0.99) == pytest.approx(2 * 1.198)
    assert backoff.delay(1, retry_after_s=7) == 7  # the partner asked for more time
    assert backoff.delay(1, retry_after_s=3600) <= 10 * 1.2  # but not for more than the ceiling


def test_the_webhook_body_holds_what_the_partner_needs_and_no_risk_or_income_figures() -> None:
    decision = opened("en", partner_id="p1")
    body = json.loads(webhook_payload(decision, render(decision), "p1").model_dump_json())
    assert body["type"] == "window.opened" and body["limit"] == 30_000 and body["apr"] == 0.1095
    assert body["customer_id"] == "cus_gold00000001" and body["application_id"] == "app_gold_000001"
    assert body["reference"].startswith("CW-") and body["title"] and body["body"]
    for internal in ("pd", "points", "grade", "expected_loss", "basis", "income_cap", "segment", "budget_available"):
        assert internal not in body
    assert "40000" not in json.dumps(body)  # the income-derived cap in the decision's basis


def test_a_closed_window_tells_the_partner_its_category_rule_and_reason_codes() -> None:
    decision = closed("zh-CN", partner_id="p1")
    body = json.loads(webhook_payload(decision, render(decision), "p1").model_dump_json())
    assert (body["type"], body["category"], body["reason"]) == ("window.closed", "credit", "score_below_cutoff")
    assert body["reason_codes"] == [r.code for r in decision.reasons]
    assert body["limit"] is None and body["locale"] == "zh-CN"


def test_only_a_partner_with_a_webhook_gets_a_delivery() -> None:
    decision = opened(partner_id="p1")
    disclosure = render(decision)
    assert webhook_delivery_for(decision, disclosure, SOURCE, {"p2"}, at=NOW) is None
    assert webhook_delivery_for(opened(), disclosure, SOURCE, {"p1"}, at=NOW) is None
    delivery = webhook_delivery_for(decision, disclosure, SOURCE, {"p1"}, at=NOW)
    assert delivery is not None and delivery.partner_id == "p1"


def test_a_decision_has_one_id_per_channel_the_same_on_every_copy() -> None:
    decision = opened(partner_id="p1")
    disclosure = render(decision)
    first = webhook_delivery_for(decision, disclosure, SOURCE, {"p1"}, at=NOW)
    again = webhook_delivery_for(decision, disclosure, SOURCE, {"p1"}, at=NOW)
    assert first is not None and again is not None
    assert first.notification_id == again.notification_id == json.loads(first.body)["notification_id"]
    assert json.loads(first.notice)["notification_id"] == first.notification_id
    assert notification_for(decision, disclosure, "inbox", at=NOW).notification_id != first.notification_id


def test_a_given_up_delivery_dead_letters_the_original_decision_with_the_reason() -> None:
    decision = opened(partner_id="p1")
    delivery = webhook_delivery_for(decision, render(decision), SOURCE, {"p1"}, at=NOW)
    assert delivery is not None
    letter = dead_letter_for_delivery(delivery, "HTTP 500: gave up after 5 attempts", attempts=5, at=NOW)
    again = dead_letter_for_delivery(delivery, "HTTP 500: gave up after 5 attempts", attempts=5, at=NOW)
    assert letter.event_id == again.event_id
    assert letter.error_type == "webhook_undeliverable" and "partner p1" in letter.error and "HTTP 500" in letter.error
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == ("credit.windows", 2, 41)
    assert base64.b64decode(letter.payload_b64) == SOURCE.value
    assert letter.headers == {**SOURCE.headers, "webhook_partner": "p1"}  # a replay names the delivery to redo
    assert letter.replayed_from is None


def test_a_replayed_delivery_given_up_again_leaves_a_letter_of_its_own_naming_the_first() -> None:
    decision = opened(partner_id="p1")
    delivery = webhook_delivery_for(decision, render(decision), SOURCE, {"p1"}, at=NOW)
    assert delivery is not None
    first = dead_letter_for_delivery(delivery, "HTTP 500", attempts=3, at=NOW)
    replayed_source = replace(SOURCE, headers={**first.headers, "replay_of": str(first.event_id)})
    again = dead_letter_for_delivery(replace(delivery, source=replayed_source, replay_of=str(first.event_id)), "HTTP 500", attempts=3, at=NOW)
    assert again.event_id != first.event_id and again.replayed_from == str(first.event_id)
    assert again.headers == first.headers  # the old replay_of is not carried into the new letter


def test_a_delivery_source_survives_its_round_trip_through_storage() -> None:
    assert DeliverySource.from_json(SOURCE.to_json()) == SOURCE
