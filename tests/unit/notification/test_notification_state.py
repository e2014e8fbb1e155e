"""The notification state's rules, pure: the ledger tells each decision once and never a stale one, the
webhook queue leases, retries and finishes deliveries, and both forget what is past its time (what
the parity test against Redis cannot wait 30 days for)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.notification.ledger import TTL_S, NoticeLedger, installed
from services.notification.ports import Claim, DeliverySource, WebhookDelivery
from services.notification.webhook_queue import DeliveryQueue, require_letters, restored

T0 = 1_795_000_000_000
DAY_MS = 86_400_000


def _states(claims: list[Claim]) -> list[str]:
    return [c.state for c in claims]


def test_a_decision_is_fresh_once_then_told_again_until_published_then_done() -> None:
    ledger = NoticeLedger()
    assert _states(ledger.claim([("d1", "c1", 1)], T0)) == ["fresh"]
    ledger.remember([("d1", b"notice")], T0)
    ledger.remember([("d1", b"another")], T0)  # the first kept notice stays
    assert ledger.claim([("d1", "c1", 1)], T0) == [Claim("again", b"notice")]
    ledger.mark_published(["d1"], T0)
    assert ledger.claim([("d1", "c1", 1)], T0) == [Claim("done")]
    assert ledger.state.notices["d1"].event is None


def test_a_decision_not_newer_than_the_last_told_is_stale_and_a_notice_never_is() -> None:
    ledger = NoticeLedger()
    claims = ledger.claim([("d2", "c1", 2), ("d1", "c1", 1), ("d2b", "c1", 2), ("review", "c1", 0), ("move", "c1", -1)], T0)
    assert _states(claims) == ["fresh", "stale", "stale", "fresh", "fresh"]
    assert ledger.state.seqs == {"c1": 2}


def test_a_notice_is_forgotten_thirty_days_after_its_claim() -> None:
    ledger = NoticeLedger()
    ledger.claim([("d1", "c1", 1)], T0)
    ledger.mark_published(["d1"], T0)
    assert _states(ledger.claim([("d1", "c1", 1)], T0 + TTL_S * 1000 - 1)) == ["done"]
    ledger.remember([], T0 + TTL_S * 1000)
    assert "d1" not in ledger.state.notices
    # Forgotten, its decision is stale all the same: the customer's order outlives the notice.
    assert _states(ledger.claim([("d1", "c1", 1)], T0 + TTL_S * 1000)) == ["stale"]


def test_a_rebuild_installs_what_was_told_as_published_keeping_what_is_left_of_its_thirty_days() -> None:
    state = installed({"recent": 1_000, "old": TTL_S * 1000, "older": TTL_S * 1000 + 5}, {"c1": 3}, T0)
    assert set(state.notices) == {"recent"}
    notice = state.notices["recent"]
    assert (notice.claimed, notice.published, notice.expires_at) == (True, True, T0 - 1_000 + TTL_S * 1000)
    assert _states(NoticeLedger(state).claim([("recent", "c1", 3), ("d2", "c1", 2)], T0)) == ["done", "stale"]


def _delivery(n: int, **changes: object) -> WebhookDelivery:
    source = DeliverySource("credit.windows", 0, n, "c1", b"{}", {})
    delivery = WebhookDelivery(f"nt{n}", "p1", "c1", f"d{n}", f"app{n}", b'{"n": 1}', b"{}", source)
    return replace(delivery, **changes)  # type: ignore[arg-type]


def test_a_claim_leases_a_due_delivery_and_counts_its_attempt_and_age() -> None:
    queue = DeliveryQueue()
    assert queue.enqueue([_delivery(1), _delivery(1)], T0) == 1
    (first,) = queue.claim(10, 1_000, "a", T0 + 5)
    assert (first.state, first.attempts, first.age_s, first.delivery) == ("pending", 1, 0.0, _delivery(1))
    assert queue.claim(10, 1_000, "b", T0 + 999) == []  # leased
    assert queue.settle("nt1", "a", "retry", 2_000, "HTTP 503", T0 + 10)
    assert queue.claim(10, 1_000, "b", T0 + 2_009) == []  # its backoff runs
    (again,) = queue.claim(10, 1_000, "b", T0 + 2_010)
    assert (again.attempts, again.age_s, again.last_error) == (2, 2.005, "HTTP 503")
    assert not queue.settle("nt1", "a", "delivered", 0, "", T0 + 2_011)  # the lease went to b


def test_a_delivery_posted_but_not_finished_is_claimed_again_as_delivered_without_an_attempt() -> None:
    queue = DeliveryQueue()
    queue.enqueue([_delivery(1)], T0)
    queue.claim(1, 100, "a", T0)
    assert queue.settle("nt1", "a", "delivered", 0, "HTTP 200", T0 + 1)
    (held,) = queue.claim(1, 100, "b", T0 + 100)
    assert (held.state, held.attempts) == ("delivered", 1)
    assert queue.finish("nt1", "b", T0 + 101)
    entry = queue.state.deliveries["nt1"]
    assert (entry.state, entry.body, entry.lease, entry.expires_at) == ("done", None, None, T0 + 101 + TTL_S * 1000)
    assert queue.state.due == {} and queue.claim(10, 100, "c", T0 + DAY_MS) == []
    assert queue.enqueue([_delivery(1)], T0 + TTL_S * 1000) == 0  # kept 30 days
    assert queue.enqueue([_delivery(1)], T0 + 101 + TTL_S * 1000) == 1  # then forgotten


def test_a_claim_takes_the_earliest_due_first_ties_by_id_and_counts_finished_entries_in_its_limit() -> None:
    queue = DeliveryQueue()
    queue.enqueue([_delivery(3), _delivery(2)], T0)
    queue.enqueue([_delivery(1)], T0 + 1)
    queue.state.due["gone"] = T0  # a queue entry whose delivery is no more
    claimed = queue.claim(3, 100, "a", T0 + 1)
    assert [c.delivery.notification_id for c in claimed] == ["nt2", "nt3"]  # "gone" took a place, and left
    assert "gone" not in queue.state.due


def test_a_replayed_give_up_is_queued_again_once_per_letter_and_only_when_dead() -> None:
    queue = DeliveryQueue()
    queue.enqueue([_delivery(1)], T0)
    assert queue.requeue([_delivery(1, replay_of="L1")], T0) == 0  # still pending
    (held,) = queue.claim(1, 100, "a", T0)
    queue.settle("nt1", "a", "failed", 0, "HTTP 422", T0)
    queue.finish("nt1", "a", T0)
    assert queue.requeue([_delivery(1, replay_of="L1")], T0 + 1) == 1
    entry = queue.state.deliveries["nt1"]
    assert (entry.state, entry.attempts, entry.replay_of, entry.expires_at, entry.last_error) == ("pending", 0, "L1", None, None)
    assert queue.requeue([_delivery(1, replay_of="L1")], T0 + 2) == 0  # once per letter
    with pytest.raises(ValueError, match="names no dead letter"):
        require_letters([_delivery(2)])


def test_a_rebuild_queues_the_deliveries_owed_afresh_and_remembers_the_replayed_letters() -> None:
    queue = DeliveryQueue()
    queue.requeue([_delivery(1, replay_of="L1")], T0)
    queue.install(restored([_delivery(2)], T0 + 5))
    assert set(queue.state.deliveries) == {"nt2"} and queue.state.due == {"nt2": T0 + 5}
    assert set(queue.state.replayed) == {"L1"}
