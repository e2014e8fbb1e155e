"""Choosing dead letters and planning a replay that happens once: pure, no broker."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from creditwindow.commands.dlq import (
    LetterFilter,
    payload_text,
    plan_replay,
    rederived,
    replay_headers,
    replayed_ids,
    select_letters,
)
from shared.contracts import DeadLetter, Topics
from shared.contracts.topics import CATALOGUE, REQUEST, RESULT, entry_of
from shared.messaging.topic_io import ReadRecord
from shared.wire import REPLAY_HEADER, Record, RefusedRecord, dead_letter_for
from tests.unit.policy.factories import NOW


def _letter(
    offset: int, *, topic: str = "credit.applications", error_type: str = "invalid", failed_by: str = "scoring", value: bytes = b'{"x": 1}',
    event_type: str = "ApplicationReceived",
) -> DeadLetter:
    record = Record(topic, 0, offset, b"cus_dlq_000001", value, (("event_type", event_type.encode()),))
    letter = dead_letter_for(RefusedRecord(record, error_type, "facts: field required"), failed_by=failed_by, at=NOW)
    return letter.model_copy(update={"occurred_at": NOW + timedelta(seconds=offset)})


def test_copies_of_a_letter_are_listed_once_oldest_first() -> None:
    a, b = _letter(2), _letter(1)
    assert select_letters([a, b, a], LetterFilter()) == [b, a]


def test_letters_are_chosen_by_id_prefix_and_filters() -> None:
    a, b, c = _letter(1), _letter(2, error_type="undecodable"), _letter(3, topic="credit.lending-requests", failed_by="policy", error_type="too_large")
    assert select_letters([a, b, c], LetterFilter(ids=(str(b.event_id)[:10],))) == [b]
    assert select_letters([a, b, c], LetterFilter(error_type="invalid")) == [a]
    assert select_letters([a, b, c], LetterFilter(source="credit.lending-requests")) == [c]
    assert select_letters([a, b, c], LetterFilter(failed_by="scoring")) == [a, b]


def test_an_unknown_or_ambiguous_id_is_an_error() -> None:
    with pytest.raises(LookupError, match="no dead letter"):
        select_letters([_letter(1)], LetterFilter(ids=("ffffffff",)))
    with pytest.raises(LookupError, match="matches 2"):
        select_letters([_letter(1), _letter(2)], LetterFilter(ids=("",)))


def test_a_letter_already_replayed_is_skipped_and_says_where() -> None:
    a, b = _letter(1), _letter(2)
    plan = plan_replay([a, b], {str(a.event_id): "credit.applications[0]@9"}, Topics())
    assert plan.replay == [b]
    assert plan.skipped == [(a, "already replayed to credit.applications[0]@9")]


def test_truncated_letters_and_foreign_topics_are_not_replayed() -> None:
    truncated = _letter(1).model_copy(update={"payload_truncated": True})
    foreign = _letter(2, topic="other.ns.credit.applications")
    plan = plan_replay([truncated, foreign], {}, Topics())
    assert plan.replay == []
    assert [why for _, why in plan.skipped] == ["its payload was truncated when it was dead-lettered"]
    assert [why for _, why in plan.refused] == ["other.ns.credit.applications is not a topic of this fleet (namespace?)"]


def test_replay_keeps_the_original_headers_and_names_the_letter() -> None:
    letter = _letter(1).model_copy(update={"headers": {"event_type": "ApplicationReceived", REPLAY_HEADER: "an-older-letter"}})
    assert replay_headers(letter) == [("event_type", b"ApplicationReceived"), (REPLAY_HEADER, str(letter.event_id).encode())]


def test_replays_are_found_by_their_header_on_the_source_topic() -> None:
    plain = ReadRecord(Record("credit.scores", 0, 5, None, b"{}", ()), None, None, 0)
    replayed = ReadRecord(Record("credit.scores", 1, 7, None, b"{}", ((REPLAY_HEADER, b"abc"),)), None, None, 0)
    assert replayed_ids([plain, replayed]) == {"abc": "credit.scores[1]@7"}


def test_a_replay_that_fails_again_says_which_letter_it_came_from() -> None:
    record = Record("credit.scores", 0, 3, b"k", b"nope", ((REPLAY_HEADER, b"0f3a"),))
    assert dead_letter_for(RefusedRecord(record, "undecodable", "not JSON"), failed_by="policy", at=NOW).replayed_from == "0f3a"
    assert _letter(4).replayed_from is None


def test_the_payload_is_shown_as_json_text_or_hex() -> None:
    assert payload_text(_letter(1, value=b'{"a":1}')) == '{\n  "a": 1\n}'
    assert payload_text(_letter(2, value=b"plain words")) == "plain words"
    assert payload_text(_letter(3, value=b"\xff\x00")) == "hex: ff00"
    assert base64.b64decode(_letter(4).payload_b64) == b'{"x": 1}'


def test_a_failed_replay_is_replayed_again_only_when_named() -> None:
    again = _letter(5).model_copy(update={"replayed_from": "0f3a9c1b-0000-0000-0000-000000000000"})
    assert plan_replay([again], {}, Topics()).skipped == [(again, "a replay of 0f3a9c1b that failed again (name it to replay it)")]
    assert plan_replay([again], {}, Topics(), named=True).replay == [again]


def test_a_letter_goes_back_only_to_the_request_topic_it_came_from() -> None:
    topics = Topics("ns1")
    requests = [
        _letter(1, topic=topics.applications),
        _letter(2, topic=topics.lending_requests, event_type="DrawdownRequested", failed_by="policy"),
        _letter(3, topic=topics.review_requests, event_type="ReviewRequested", failed_by="policy"),
    ]
    plan = plan_replay(requests, {}, topics)
    assert plan.replay == requests and not plan.refused and not plan.redeliver


@pytest.mark.parametrize("topic", [e.attribute for e in CATALOGUE if e.kind != REQUEST])
def test_a_letter_from_any_other_topic_is_refused_saying_how_the_fleet_rederives_it(topic: str) -> None:
    topics = Topics("ns1")
    letter = _letter(1, topic=getattr(topics, topic), failed_by="notification")
    plan = plan_replay([letter], {}, topics)
    assert plan.replay == [] and plan.redeliver == []
    ((refused, why),) = plan.refused
    entry = entry_of(topic)
    assert refused is letter and why.startswith(f"{entry.base} is a {entry.kind} topic: a dead letter goes back only to the request topic it came from")
    assert ("re-derived by the fleet" in why) == (entry.kind == RESULT)
    assert why == rederived(entry) and len(why) > len(entry.base) + 100  # what to do instead, in words


def test_a_crafted_letter_naming_the_decisions_topic_is_refused_whatever_it_carries() -> None:
    topics = Topics("ns1")
    forged = _letter(7, topic=topics.windows, failed_by="scoring", event_type="WindowOpened", value=b'{"event_type": "WindowOpened", "limit": 200000}')
    plan = plan_replay([forged], {}, topics, named=True)
    assert plan.replay == [] and plan.redeliver == []
    assert "results are re-derived by the fleet" in plan.refused[0][1] and "cache rebuild --yes" in plan.refused[0][1]


def test_a_result_dead_lettered_on_a_request_topic_is_never_sent_back_there() -> None:
    topics = Topics("ns1")
    result = _letter(3, topic=topics.lending_requests, error_type="wrong_topic", event_type="RepaymentApplied", failed_by="policy")
    untyped = _letter(4, topic=topics.lending_requests, value=b'{"event_type": "DrawdownApproved"}', event_type="")
    plan = plan_replay([result, untyped], {}, topics)
    assert plan.replay == []
    assert [why for _, why in plan.refused] == [
        "a RepaymentApplied does not belong on credit.lending-requests and is never sent there: it is written to credit.lending-results by the fleet alone",
        "a DrawdownApproved does not belong on credit.lending-requests and is never sent there: it is written to credit.lending-results by the fleet alone",
    ]


def test_a_webhook_given_up_is_planned_for_redelivery_from_its_decision_not_republished() -> None:
    topics = Topics("ns1")
    given_up = _letter(5, topic=topics.windows, error_type="webhook_undeliverable", failed_by="notification", event_type="WindowOpened")
    plan = plan_replay([given_up], {}, topics)
    assert plan.redeliver == [given_up] and plan.replay == [] and plan.refused == []
