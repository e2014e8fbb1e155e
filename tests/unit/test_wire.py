"""The wire format: what goes on Kafka and what a decoder refuses."""

from __future__ import annotations

import base64
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.germancredit import applications
from shared.contracts import ApplicationReceived, ScoreComputed
from shared.wire import MAX_DEAD_LETTER_BYTES, MAX_EVENT_BYTES, Record, RefusedRecord, dead_letter_for, decode, encode
from tests.clocks import NOW


def _record(value: bytes | None, headers: dict[str, str] | None = None, key: bytes | None = b"cus_0123456789") -> Record:
    return Record("credit.applications", 3, 42, key, value, tuple((k, v.encode()) for k, v in (headers or {}).items()))


def _application() -> ApplicationReceived:
    return next(applications("unit"))


def test_an_event_round_trips_with_customer_key_and_headers() -> None:
    event = _application()
    message = encode(event)
    assert message.key == event.customer_id.encode()
    assert message.headers["event_type"] == "ApplicationReceived"
    assert message.headers["schema_version"] == "1"
    assert message.headers["correlation_id"] == event.application_id
    assert decode(_record(message.value, message.headers), [ApplicationReceived]) == event


def test_a_body_without_headers_is_decoded_by_its_event_type() -> None:
    event = _application()
    assert decode(_record(encode(event).value), [ApplicationReceived]) == event


def test_undecodable_bytes_are_refused_with_the_reason() -> None:
    refused = decode(_record(b"\xff\xfe not json"), [ApplicationReceived])
    assert isinstance(refused, RefusedRecord)
    assert refused.error_type == "undecodable"


def test_an_invalid_field_is_refused_naming_the_field() -> None:
    body = json.loads(encode(_application()).value)
    body["applicant"]["age_years"] = 300
    refused = decode(_record(json.dumps(body).encode()), [ApplicationReceived])
    assert isinstance(refused, RefusedRecord)
    assert refused.error_type == "invalid"
    assert "applicant.age_years" in refused.error


def test_an_event_of_another_type_is_refused() -> None:
    body = encode(_application()).value
    refused = decode(_record(body, {"event_type": "ApplicationReceived"}), [ScoreComputed])
    assert isinstance(refused, RefusedRecord) and refused.error_type == "unexpected_type"


def test_an_oversized_payload_is_refused_before_parsing() -> None:
    refused = decode(_record(b"{" + b" " * (MAX_EVENT_BYTES + 1) + b"}"), [ApplicationReceived])
    assert isinstance(refused, RefusedRecord) and refused.error_type == "too_large"


def test_deep_nesting_is_refused_before_parsing() -> None:
    refused = decode(_record(b"[" * 5000 + b"]" * 5000), [ApplicationReceived])
    assert isinstance(refused, RefusedRecord) and refused.error_type == "too_deep"


def test_a_customer_id_that_is_a_phone_number_is_refused() -> None:
    body = json.loads(encode(_application()).value)
    body["customer_id"] = "13812345678"
    refused = decode(_record(json.dumps(body).encode()), [ApplicationReceived])
    assert isinstance(refused, RefusedRecord) and "pseudonymous" in refused.error


def test_a_dead_letter_keeps_the_original_bytes_source_and_reason() -> None:
    record = _record(b"\x00\x01garbage", {"event_type": "X"})
    refused = decode(record, [ApplicationReceived])
    assert isinstance(refused, RefusedRecord)
    letter = dead_letter_for(refused, failed_by="scoring", at=NOW)
    assert base64.b64decode(letter.payload_b64) == b"\x00\x01garbage"
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == ("credit.applications", 3, 42)
    assert letter.headers == {"event_type": "X"}
    assert letter.error and letter.failed_by == "scoring"
    assert dead_letter_for(refused, failed_by="scoring", at=NOW).event_id == letter.event_id  # a redelivery is the same letter


def test_locale_spellings_are_normalised() -> None:
    body = json.loads(encode(_application()).value)
    body["facts"]["locale"] = "en_US"
    decoded = decode(_record(json.dumps(body).encode()), [ApplicationReceived])
    assert isinstance(decoded, ApplicationReceived) and decoded.facts.locale == "en"


# --- dead letters always fit the broker ----------------------------------------------------------------

_CONTROL = "".join(chr(c) for c in range(32))


def test_a_record_with_a_huge_header_key_of_control_characters_gets_a_letter_that_fits() -> None:
    crafted = Record("credit.applications", 3, 77, b"\x01" * 5_000, b"\x00" * 350_000, (((_CONTROL * 10_000)[:300_000], b"\x02" * 300_000),))
    letter = dead_letter_for(RefusedRecord(crafted, "too_large", "value is 350000 bytes"), failed_by="scoring", at=NOW)
    assert len(encode(letter).value) <= MAX_DEAD_LETTER_BYTES
    assert letter.payload_truncated and (letter.source_partition, letter.source_offset) == (3, 77)


@settings(max_examples=60, deadline=None)
@given(
    value=st.binary(max_size=900_000),
    header_count=st.integers(0, 100),
    header_chars=st.text(alphabet=_CONTROL + "ab\u4e2d", min_size=0, max_size=3).map(lambda t: t * 2_000),
    key=st.binary(max_size=20_000),
)
def test_every_dead_letter_fits_whatever_the_record_carried(value: bytes, header_count: int, header_chars: str, key: bytes) -> None:
    headers = tuple((f"{header_chars}{n}", header_chars.encode()) for n in range(header_count))
    letter = dead_letter_for(RefusedRecord(Record("t", 0, 1, key, value, headers), "too_large", _CONTROL * 500), failed_by="policy", at=NOW)
    size = len(encode(letter).value)
    assert size <= MAX_DEAD_LETTER_BYTES
    assert letter.payload_omitted or letter.payload_b64 or not value


def test_a_score_with_nan_or_infinity_is_refused_not_decided() -> None:
    from tests.unit.policy.factories import score

    for bad in ("NaN", "Infinity", "-Infinity"):
        value = score().model_dump_json().replace('"pd":0.04', f'"pd":{bad}').encode()
        refused = decode(Record("credit.scores", 0, 1, b"cus_unit00000001", value, (("event_type", b"ScoreComputed"),)), (ScoreComputed,))
        assert isinstance(refused, RefusedRecord) and refused.error_type in ("invalid", "undecodable"), bad
