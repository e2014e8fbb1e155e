"""The split's migration planned: the retired mixed topics read once as history, each record copied
where it belongs now only when the fleet vouches for it, requests left, nothing copied twice. Pure."""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

from creditwindow.hmac_history import old_action_signature, old_ring_refusal
from creditwindow.operator_ops import signed_action
from creditwindow.split_migration import copied_already, history_headers, plan_split
from services.policy.windows.model import Balance
from shared.contracts import (
    CustomerSuspended,
    DrawdownRequested,
    Event,
    OperatorAction,
    RepaymentApplied,
    ReviewDecided,
    ReviewRequested,
)
from shared.messaging.topic_io import ReadRecord
from shared.settings import Settings
from shared.wire import HISTORY_HEADER, Record, RefusedRecord, encode
from tests.clocks import NOW
from tests.unit.notification.factories import drawdown, review_concluded, review_opened

SETTINGS = Settings(topic_namespace="ns1")
TOPICS = SETTINGS.topics
CUSTOMER = "cus_gold00000001"  # the factories' customer
_offsets: dict[str, int] = {}


def _at(topic: str, event: Event | None, value: bytes | None = None) -> ReadRecord:
    offset = _offsets[topic] = _offsets.get(topic, -1) + 1
    raw = value if value is not None else encode(event).value  # type: ignore[arg-type]
    record = Record(topic, 0, offset, CUSTOMER.encode(), raw, (("event_type", (event.event_type if event else "?").encode()),))
    return ReadRecord(record, event, None if event else RefusedRecord(record, "undecodable", "not JSON"), 0)


OLD_RING = {"k1": b"the-old-fleets-shared-hmac-key-0123456789"}  # the ring of before operators' keys
A = TypeVar("A", bound=OperatorAction)


def _verifies(action: OperatorAction) -> str | None:
    refused = old_ring_refusal(OLD_RING, action, "ns1")
    return None if refused is None else refused.split(":")[0]


def _old_signed(model: type[A], **fields: object) -> A:
    """An action as the old fleet's CLI signed it: HMAC-SHA256 with the shared ring."""
    unsigned = model(
        correlation_id=CUSTOMER, producer="creditwindow-cli", issued_by="ops_lin", issued_at=NOW - timedelta(hours=1), key_id="k1",
        namespace="ns1", signature="0" * 64, **fields,
    )  # fmt: skip
    return unsigned.model_copy(update={"signature": old_action_signature(OLD_RING["k1"], unsigned)})


def _decided() -> ReviewDecided:
    concluded = review_concluded()
    return _old_signed(
        ReviewDecided, review_id=concluded.review_id, reference=concluded.reference, decision_id=concluded.decision_id,
        customer_id=CUSTOMER, outcome="upheld", note="",
    )  # fmt: skip


def _history() -> dict[str, ReadRecord]:
    drawdowns, reviews = TOPICS.retired_drawdowns, TOPICS.retired_reviews
    approved = drawdown("en", customer_id=CUSTOMER)  # balance 12,000 at sequence 3
    forged = RepaymentApplied(correlation_id="rp_forged_0001", repayment_id="rp_forged_0001", customer_id=CUSTOMER, amount=5_000,
                              applied=5_000, balance=0, balance_seq=99, producer="policy")  # fmt: skip
    same_seq = forged.model_copy(update={"balance_seq": approved.balance_seq, "repayment_id": "rp_forged_0002"})
    suspended = _old_signed(CustomerSuspended, customer_id=CUSTOMER, reason="collections")
    return {
        "request": _at(drawdowns, DrawdownRequested(correlation_id="dd_gold_000001", drawdown_id="dd_gold_000001", customer_id=CUSTOMER, amount=5_000)),
        "approved": _at(drawdowns, approved),
        "forged above the book": _at(drawdowns, forged),
        "forged at the book's sequence": _at(drawdowns, same_seq),
        "garbage": _at(drawdowns, None, b"\x00"),
        "asked": _at(reviews, ReviewRequested(correlation_id="r", customer_id=CUSTOMER, reference=review_opened().reference.lower())),
        "opened": _at(reviews, review_opened()),
        "opened unasked": _at(reviews, review_opened().model_copy(update={"customer_id": "cus_other0000001"})),
        "decided": _at(reviews, _decided()),
        "concluded": _at(reviews, review_concluded()),
        "concluded undecided": _at(reviews, review_concluded().model_copy(update={"review_id": review_opened().decision_id})),
        "suspended": _at(reviews, suspended),
        "forged suspension": _at(reviews, suspended.model_copy(update={"customer_id": "cus_victim000001"})),
    }


def test_the_results_the_fleet_vouches_for_are_copied_to_its_result_topics_and_the_rest_refused_with_why() -> None:
    history = _history()
    plan = plan_split("results", list(history.values()), TOPICS, copied=set(), verifies=_verifies, balances={CUSTOMER: Balance(12_000, 3)})
    copied = {(record.offset, record.topic, to) for record, to in plan.copies}
    assert copied == {
        (history["approved"].record.offset, TOPICS.retired_drawdowns, TOPICS.lending_results),
        (history["opened"].record.offset, TOPICS.retired_reviews, TOPICS.review_results),
        (history["concluded"].record.offset, TOPICS.retired_reviews, TOPICS.review_results),
    }
    why = {record.offset if record.topic == TOPICS.retired_reviews else -1 - record.offset: why for record, why in plan.refused}
    assert why[-1 - history["forged above the book"].record.offset] == (
        "a RepaymentApplied the live book never took: balance 0 at sequence 99, the book holds 12000 at 3"
    )
    assert "the live book never took" in why[-1 - history["forged at the book's sequence"].record.offset]
    assert why[-1 - history["garbage"].record.offset] == "not readable as what the topic carried: not JSON"
    assert why[history["opened unasked"].record.offset] == "a review of CW-7WN9-R6VQ-T175 opened that no request of its customer asked for"
    assert "without an operator's signed decision that verifies" in why[history["concluded undecided"].record.offset]
    assert plan.left == {"DrawdownRequested": 1, "ReviewRequested": 1}  # answered before the split; actions are the other part's
    assert plan.already == 0


def test_the_signed_actions_that_verify_are_copied_to_the_operators_topic_and_a_forged_one_refused() -> None:
    history = _history()
    plan = plan_split("actions", list(history.values()), TOPICS, copied=set(), verifies=_verifies)
    assert [(record.offset, to) for record, to in plan.copies] == [
        (history["decided"].record.offset, TOPICS.operator_actions), (history["suspended"].record.offset, TOPICS.operator_actions),
    ]  # fmt: skip
    assert [(record.offset, why) for record, why in plan.refused] == [
        (history["forged suspension"].record.offset, "a CustomerSuspended that does not verify: forged"),
    ]
    assert plan.left == {"DrawdownRequested": 1, "ReviewRequested": 1}


def test_a_record_copied_by_an_earlier_run_is_not_copied_again() -> None:
    history = _history()
    first = plan_split("actions", list(history.values()), TOPICS, copied=set(), verifies=_verifies)
    on_destination = [ReadRecord(Record(to, 0, n, r.key, r.value, tuple(history_headers(r))), None, None, 0) for n, (r, to) in enumerate(first.copies)]
    again = plan_split("actions", list(history.values()), TOPICS, copied=copied_already(on_destination), verifies=_verifies)
    assert again.copies == [] and again.already == len(first.copies)


def test_a_copy_keeps_the_original_headers_and_says_where_it_was() -> None:
    record = Record(TOPICS.retired_reviews, 3, 1200, b"k", b"{}", (("event_type", b"CustomerSuspended"), (HISTORY_HEADER, b"older")))
    assert history_headers(record) == [("event_type", b"CustomerSuspended"), (HISTORY_HEADER, b"ns1.credit.reviews[3]@1200")]


def test_an_action_signed_with_an_operators_key_is_not_the_old_fleets_history() -> None:
    # The retired topics hold only what the fleet of before operators' keys wrote: an Ed25519
    # signature found there is vouched for by no key of the old ring.
    ed25519 = signed_action(CustomerSuspended, SETTINGS, issued_by="ops_lin", issued_at=NOW, customer_id=CUSTOMER, reason="collections")
    plan = plan_split("actions", [_at(TOPICS.retired_reviews, ed25519)], TOPICS, copied=set(), verifies=_verifies)
    assert plan.copies == [] and [why for _, why in plan.refused] == ["a CustomerSuspended that does not verify: unknown_key"]
