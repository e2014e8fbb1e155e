"""What `tail` shows: filters and one-line summaries, pure."""

from __future__ import annotations

import json

import pytest

from creditwindow.commands.tail import TailFilter, as_json_line, customer_of, summarise
from creditwindow.terminal import resolve_topic
from services.policy.windows.decisions import decision_event, propose
from services.policy.windows.model import Posting
from shared.contracts import Event, Topics
from shared.messaging.topic_io import ReadRecord
from shared.wire import Record, RefusedRecord, encode
from tests.unit.policy.factories import NOW, default_policy, score


def _read(event: Event, topic: str = "credit.windows") -> ReadRecord:
    message = encode(event)
    return ReadRecord(Record(topic, 0, 1, message.key, message.value, ()), event, None, 1_764_331_200_000)


def _opened() -> ReadRecord:
    proposal = propose(score(customer_id="cus_tail_000001"), default_policy(), NOW)
    return _read(decision_event(proposal, Posting(fresh=True, seq=1, granted=20_000, refusal=None, programme_part=0, available=1_000_000), default_policy(), NOW))


def _closed() -> ReadRecord:
    proposal = propose(score(customer_id="cus_tail_000002", points=400), default_policy(), NOW)
    return _read(decision_event(proposal, Posting(fresh=True, seq=1, granted=0, refusal=None, programme_part=0, available=1_000_000), default_policy(), NOW))


def _refused() -> ReadRecord:
    record = Record("credit.windows", 0, 2, b"cus_tail_000003", b"nope", ())
    return ReadRecord(record, None, RefusedRecord(record, "undecodable", "not JSON"), 0)


def test_filters_by_customer_event_type_and_category() -> None:
    opened, closed, refused = _opened(), _closed(), _refused()
    assert [r for r in (opened, closed, refused) if TailFilter(customers=frozenset({"cus_tail_000002"})).matches(r)] == [closed]
    assert [r for r in (opened, closed, refused) if TailFilter(event_types=frozenset({"windowopened"})).matches(r)] == [opened]
    assert [r for r in (opened, closed, refused) if TailFilter(event_types=frozenset({"refused"})).matches(r)] == [refused]
    assert [r for r in (opened, closed, refused) if TailFilter(categories=frozenset({"credit"})).matches(r)] == [closed]
    assert [r for r in (opened, closed, refused) if TailFilter(categories=frozenset({"opened"})).matches(r)] == [opened]
    assert all(TailFilter().matches(r) for r in (opened, closed, refused))


def test_an_undecodable_record_is_about_the_customer_in_its_key() -> None:
    assert customer_of(_refused()) == "cus_tail_000003"


def test_summaries_say_what_happened() -> None:
    assert summarise(_opened().event).startswith("opened 20,000 at 7.30% APR, grade A")  # type: ignore[arg-type]
    assert summarise(_closed().event) == "closed: credit/score_below_cutoff (default@1, application)"  # type: ignore[arg-type]
    assert summarise(score(points=512.34, grade="C", pd=0.111)) == "512.3 points, grade C, PD 0.111"


def test_json_lines_carry_the_position_and_the_event_or_why_it_was_refused() -> None:
    line = json.loads(as_json_line(_opened()))
    assert (line["topic"], line["offset"], line["event_type"]) == ("credit.windows", 1, "WindowOpened")
    assert line["event"]["limit"] == 20_000
    refused = json.loads(as_json_line(_refused()))
    assert refused["refused"] == {"error_type": "undecodable", "error": "not JSON"}


def test_topics_are_named_short_or_full_within_the_namespace() -> None:
    topics = Topics("t1")
    assert resolve_topic("windows", topics) == "t1.credit.windows"
    assert resolve_topic("credit.deadletter", topics) == "t1.credit.deadletter"
    assert resolve_topic("t1.credit.windows.shadow", topics) == "t1.credit.windows.shadow"
    with pytest.raises(ValueError, match="unknown topic 'decisions'"):
        resolve_topic("decisions", topics)
