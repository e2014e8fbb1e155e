"""Choosing dead letters and planning a replay that happens once: pure, no broker."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from creditwindow.commands.dlq import (
    LetterFilter,
    payload_text,
    plan_replay,
    replay_headers,
    replayed_ids,
    select_letters,
)
from shared.contracts import DeadLetter
from shared.messaging.topic_io import ReadRecord
from shared.wire import REPLAY_HEADER, Record, RefusedRecord, dead_letter_for
from tests.unit.policy.factories import NOW


def _letter(offset: int, *, topic: str = "credit.scores", error_type: str = "invalid", failed_by: str = "policy", value: bytes = b'{"x": 1}') -> DeadLetter:
    record = Record(topic, 0, offset, b"cus_dlq_000001", value, (("event_type", b"ScoreComputed"),))
    letter = dead_letter_for(RefusedRecord(record, error_type, "facts: field required"), failed_by=failed_by, at=NOW)
    return letter.model_copy(update={"occurred_at": NOW + timedelta(seconds=offset)})


def test_copies_of_a_letter_are_listed_once_oldest_first() -> None:
    a, b = _letter(2), _letter(1)
    assert select_letters([a, b, a], LetterFilter()) == [b, a]


def test_letters_are_chosen_by_id_prefix_and_filters() -> None:
    a, b, c = _letter(1), _letter(2, error_type="undecodable"), _letter(3, topic="credit.applications", failed_by="scoring", error_type="too_large")
    assert select_letters([a, b, c], LetterFilter(ids=(str(b.event_id)[:10],))) == [b]
    assert select_letters([a, b, c], LetterFilter(error_type="invalid")) == [a]
    assert select_letters([a, b, c], LetterFilter(source="credit.applications")) == [c]
    assert select_letters([a, b, c], LetterFilter(failed_by="policy")) == [a, b]


def test_an_unknown_or_ambiguous_id_is_an_error() -> None:
    with pytest.raises(LookupError, match="no dead letter"):
        select_letters([_letter(1)], LetterFilter(ids=("ffffffff",)))
    with pytest.raises(LookupError, match="matches 2"):
        select_letters([_letter(1), _letter(2)], LetterFilter(ids=("",)))


def test_a_letter_already_replayed_is_skipped_and_says_where() -> None:
    a, b = _letter(1), _letter(2)
    plan = plan_replay([a, b], {str(a.event_id): "credit.scores[0]@9"}, ["credit.scores"])
    assert plan.replay == [b]
    assert plan.skipped == [(a, "already replayed to credit.scores[0]@9")]


def test_truncated_letters_and_foreign_topics_are_not_replayed() -> None:
    truncated = _letter(1).model_copy(update={"payload_truncated": True})
    foreign = _letter(2, topic="other.ns.credit.scores")
    plan = plan_replay([truncated, foreign], {}, ["credit.scores"])
    assert plan.replay == []
    assert [why for _, why in plan.skipped] == [
        "its payload was truncated when it was dead-lettered",
        "other.ns.credit.scores is not a topic of this fleet (namespace?)",
    ]


def test_replay_keeps_the_original_headers_and_names_the_letter() -> None:
    letter = _letter(1).model_copy(update={"headers": {"event_type": "ScoreComputed", REPLAY_HEADER: "an-older-letter"}})
    assert replay_headers(letter) == [("event_type", b"ScoreComputed"), (REPLAY_HEADER, str(letter.event_id).encode())]


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
    assert plan_replay([again], {}, ["credit.scores"]).skipped == [(again, "a replay of 0f3a9c1b that failed again (name it to replay it)")]
    assert plan_replay([again], {}, ["credit.scores"], named=True).replay == [again]
