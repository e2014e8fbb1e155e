"""Operators' keys through the policy service's composition root, on the in-memory broker: the fleet
verifies with public keys only, a signed retirement on credit.policy ends a key, HMAC and forged
signatures and actions held back too long are dead-lettered."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import CollectorRegistry

from creditwindow.key_ops import signed_retirement
from creditwindow.operator_ops import signed_action
from creditwindow.policy_ops import signed_update
from services.policy.app import compose
from services.policy.windows.adapters.memory_book import MemoryBook
from shared.contracts import CustomerSuspended, DeadLetter, Event, WindowClosed, WindowOpened
from shared.messaging import Outbox
from shared.settings import Settings
from shared.wire import encode
from tests.clocks import NOW, clock_at
from tests.handlers.capture import Captured, capture
from tests.operator_keys import forger, operator, ring_json, signing_as
from tests.unit.policy.factories import default_policy, score

LIN, WANG = operator("ops-lin"), operator("ops-wang")
CUSTOMER = "cus_unit00000001"


class Fleet:
    """The policy service composed with the ring of Lin's and Wang's public keys, no private key."""

    def __init__(self) -> None:
        self.settings = Settings(topic_namespace="k", operator_public_keys=json.loads(ring_json(LIN, WANG)), retry_initial_ms=1, retry_max_ms=5)
        self.clock = clock_at(NOW)
        self.broker = KafkaBroker()
        self.policy = compose(
            self.settings, broker=self.broker, store=MemoryBook(), publisher=Outbox(self.broker, service="policy", clock=self.clock),
            registry=CollectorRegistry(), policy=default_policy(), clock=self.clock,
        )  # fmt: skip
        self.out: Captured = capture(self.broker, self.settings.topics.windows, self.settings.topics.deadletter)

    def operator(self, key: object) -> Settings:
        """The operators' CLI of whoever holds `key`, on this fleet's topics."""
        return signing_as(self.settings, key, LIN, WANG)  # type: ignore[arg-type]

    async def send(self, topic: str, event: Event, *, logged_at: datetime = NOW) -> None:
        message = encode(event)
        at = int(logged_at.timestamp() * 1000)  # the broker's time on the operators' topics
        await self.broker.publish(message.value, topic, key=message.key, headers=message.headers, timestamp_ms=at)

    def update(self, version: int, cli: Settings, **changes: object) -> object:
        text = default_policy(version=version, **changes).model_dump_json()
        return signed_update(text, cli, issued_by="ops_lin", issued_at=NOW - timedelta(seconds=30))

    def letters(self) -> list[str]:
        return [letter.error_type for letter in self.out.of(DeadLetter)]


async def test_the_fleet_applies_an_update_signed_by_an_operator_key_and_refuses_a_forged_and_an_hmac_one() -> None:
    fleet = Fleet()
    policy = fleet.settings.topics.policy
    async with TestKafkaBroker(fleet.broker):
        await fleet.send(policy, fleet.update(2, forger(fleet.settings, "ops-lin"), cycle_factor=0.5))  # type: ignore[arg-type]
        hmac_era = fleet.update(3, fleet.operator(LIN), cycle_factor=0.5).model_copy(update={"signature": "ab" * 32})  # type: ignore[attr-defined]
        await fleet.send(policy, hmac_era)
        assert fleet.policy.state.active.version == 1
        await fleet.send(policy, fleet.update(4, fleet.operator(WANG)))  # type: ignore[arg-type]
    assert fleet.policy.state.active.version == 4
    counted = fleet.policy.metrics.policy_updates.labels
    assert (counted("policy_forged")._value.get(), counted("policy_hmac")._value.get(), counted("applied")._value.get()) == (1, 1, 1)
    assert set(fleet.letters()) <= {"policy_forged", "policy_hmac"}  # the in-memory broker's offsets are all 0: one letter id


async def test_a_signed_retirement_on_the_policy_topic_ends_a_key_for_updates_and_for_actions() -> None:
    fleet = Fleet()
    topics = fleet.settings.topics
    async with TestKafkaBroker(fleet.broker):
        retired_at = NOW - timedelta(minutes=10)
        retirement = signed_retirement(fleet.operator(LIN), retired_key_id="ops-lin", issued_by="ops_lin", issued_at=retired_at)
        await fleet.send(topics.policy, retirement, logged_at=NOW - timedelta(minutes=10))
        await fleet.send(topics.policy, fleet.update(2, fleet.operator(LIN)))  # type: ignore[arg-type]
        suspend = signed_action(CustomerSuspended, fleet.operator(LIN), issued_by="ops_lin", issued_at=NOW, customer_id=CUSTOMER, reason="collections")
        await fleet.send(topics.operator_actions, suspend)
        await fleet.send(topics.policy, fleet.update(3, fleet.operator(WANG)))  # type: ignore[arg-type]
        await fleet.send(topics.scores, score(customer_id=CUSTOMER))
    assert fleet.policy.updates.signatures.ring.keys["ops-lin"].retire_at == NOW - timedelta(minutes=10)
    assert fleet.policy.state.active.version == 3  # Wang's key still signs
    assert sorted(fleet.letters()) == ["operator_retired_key", "policy_retired_key"]
    assert fleet.policy.clerk.desk.suspensions == {} and len(fleet.out.of(WindowOpened)) == 1
    assert fleet.policy.metrics.policy_updates.labels("key_retired")._value.get() == 1


async def test_an_action_that_reached_the_log_later_than_the_policy_allows_is_refused_and_suspends_nobody() -> None:
    fleet = Fleet()
    topics = fleet.settings.topics
    held_back = NOW - default_policy().customer_care.max_action_age - timedelta(minutes=1)
    async with TestKafkaBroker(fleet.broker):
        await fleet.send(topics.scores, score(customer_id=CUSTOMER))
        suspend = signed_action(CustomerSuspended, fleet.operator(LIN), issued_by="ops_lin", issued_at=held_back, customer_id=CUSTOMER, reason="collections")
        await fleet.send(topics.operator_actions, suspend)
    assert fleet.letters() == ["operator_stale"]
    assert fleet.policy.clerk.desk.suspensions == {} and not fleet.out.of(WindowClosed)


async def test_a_signed_action_takes_effect_only_from_the_operators_topic() -> None:
    # Signed by a key of the ring, but written where upstream apps write (the review and the lending
    # requests): each is dead-lettered as out of place and suspends nobody; the same action on
    # credit.operator-actions suspends the customer.
    fleet = Fleet()
    topics = fleet.settings.topics
    suspend = signed_action(CustomerSuspended, fleet.operator(LIN), issued_by="ops_lin", issued_at=NOW, customer_id=CUSTOMER, reason="collections")
    async with TestKafkaBroker(fleet.broker):
        await fleet.send(topics.review_requests, suspend)
        await fleet.send(topics.lending_requests, suspend)
        assert fleet.letters() == ["wrong_topic", "wrong_topic"]
        assert fleet.policy.clerk.desk.suspensions == {}
        await fleet.send(topics.operator_actions, suspend)
    assert set(fleet.policy.clerk.desk.suspensions) == {CUSTOMER}
    assert fleet.letters() == ["wrong_topic", "wrong_topic"]
