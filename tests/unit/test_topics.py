"""The one list of topics (shared/contracts/topics.py): every topic once, each event type written to
one kind of topic, and every reader of the log decoding a record only as what its topic carries."""

from __future__ import annotations

import dataclasses

import pytest

from shared.contracts import EVENT_TYPES, DrawdownApproved, RepaymentApplied, ReviewConcluded, Topics, WindowOpened
from shared.contracts.topics import CATALOGUE, REQUEST, RESULT, RETIRED, entry_of, homes_of
from shared.messaging.topic_admin import fleet_topics
from shared.messaging.topic_io import carried_by
from shared.settings import Settings
from shared.wire import Record, RefusedRecord, decode, encode
from tests.unit.notification.factories import drawdown, review_concluded


def _properties() -> set[str]:
    return {name for name, value in vars(Topics).items() if isinstance(value, property)} - {"topic_prefix", "group_prefix"}


def test_every_topic_property_has_one_catalogue_entry_and_one_name() -> None:
    assert sorted(entry.attribute for entry in CATALOGUE) == sorted(_properties())
    topics = Topics("ns1")
    for entry in CATALOGUE:
        assert getattr(topics, entry.attribute) == f"ns1.{entry.base}"
        assert topics.entry(f"ns1.{entry.base}") == entry
    assert len({entry.base for entry in CATALOGUE}) == len(CATALOGUE)
    assert topics.entry("credit.windows") is None and topics.entry("other.credit.windows") is None  # another namespace


def test_every_event_of_the_fleet_is_written_to_one_kind_of_topic() -> None:
    for event_type in EVENT_TYPES:
        kinds = {_entry_at(base).kind for base in homes_of(event_type)}
        assert len(kinds) == 1, (event_type, kinds)
    assert homes_of("RepaymentApplied") == ["credit.lending-results"]
    assert homes_of("ReviewRequested") == ["credit.review-requests"]
    assert homes_of("CustomerSuspended") == ["credit.operator-actions"]
    assert homes_of("WindowOpened") == ["credit.windows", "credit.windows.shadow"]


def _entry_at(base: str) -> object:
    (entry,) = [e for e in CATALOGUE if e.base == base]
    return entry


def test_request_topics_carry_no_result_and_the_retired_topics_are_not_created() -> None:
    results = {event for entry in CATALOGUE if entry.kind == RESULT for event in entry.events}
    for entry in CATALOGUE:
        if entry.kind == REQUEST:
            assert not set(entry.events) & results, entry.attribute
    settings = Settings(topic_namespace="ns1")
    created = {spec.name for spec in fleet_topics(settings)}
    assert created == set(settings.topics.all())
    assert not created & set(settings.topics.of_kind(RETIRED))
    kept = {spec.name for spec in fleet_topics(settings) if spec.configs["retention.ms"] == "-1"}
    assert kept == {getattr(settings.topics, e.attribute) for e in CATALOGUE if e.kept_forever and e.kind != RETIRED}
    assert entry_of("lending_results").kept_forever and not entry_of("lending_requests").kept_forever


@pytest.mark.parametrize(
    ("topic", "event"),
    [
        ("lending_requests", drawdown("en")),
        ("lending_requests", drawdown("en", "repaid")),
        ("review_requests", review_concluded("en")),
        ("applications", drawdown("en")),
        ("lending_results", review_concluded("en")),
    ],
    ids=lambda value: value if isinstance(value, str) else type(value).__name__,
)
def test_a_reader_of_the_log_reads_an_event_on_a_topic_that_does_not_carry_it_as_refused(topic: str, event: object) -> None:
    settings = Settings(topic_namespace="ns1")
    name = getattr(settings.topics, topic)
    message = encode(event)  # type: ignore[arg-type]
    record = Record(name, 0, 7, message.key, message.value, tuple((k, v.encode()) for k, v in message.headers.items()))
    refused = decode(record, carried_by(settings, name))
    assert isinstance(refused, RefusedRecord) and refused.error_type == "wrong_topic"
    assert f"does not belong on {name}" in refused.error
    # without the header, the body names the type: the same refusal
    bare = dataclasses.replace(record, headers=())
    assert decode(bare, carried_by(settings, name)).error_type == "wrong_topic"  # type: ignore[union-attr]


def test_a_reader_takes_each_topics_own_events_and_anything_on_a_topic_outside_the_fleet() -> None:
    settings = Settings(topic_namespace="ns1")
    for topic, event in (("lending_results", drawdown("en")), ("review_results", review_concluded("en"))):
        message = encode(event)
        name = getattr(settings.topics, topic)
        assert isinstance(decode(Record(name, 0, 0, message.key, message.value), carried_by(settings, name)), (DrawdownApproved, ReviewConcluded))
    assert set(carried_by(settings, "elsewhere.topic")) == set(EVENT_TYPES.values())
    assert RepaymentApplied in carried_by(settings, settings.topics.retired_drawdowns)  # history, read by the migration
    assert WindowOpened not in carried_by(settings, settings.topics.lending_results)
