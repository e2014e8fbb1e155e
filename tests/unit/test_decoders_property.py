"""Property-based: arbitrary bytes and arbitrary JSON never crash a decoder; each input is decoded or refused."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.scoring.assessment import unreadable
from shared.contracts import (
    EVENT_TYPES,
    ApplicationReceived,
    Event,
    PolicyUpdated,
    ScoreComputed,
    WindowClosed,
    WindowOpened,
)
from shared.wire import Record, RefusedRecord, dead_letter_for, decode
from tests.clocks import NOW

ACCEPTED = {
    "scoring": (ApplicationReceived,),
    "policy": (ScoreComputed,),
    "policy-control": (PolicyUpdated,),
    "notification": (WindowOpened, WindowClosed),
    "tools": tuple(EVENT_TYPES.values()),
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=20), children, max_size=6),
    max_leaves=60,
)
event_like = st.fixed_dictionaries(
    {"event_type": st.sampled_from([*EVENT_TYPES, "Nope"]), "correlation_id": st.text(max_size=90)},
    optional={
        "schema_version": st.integers(-2, 200) | st.text(max_size=3),
        "customer_id": st.text(max_size=70),
        "application_id": st.text(max_size=90),
        "facts": json_values,
        "applicant": json_values,
        "occurred_at": st.text(max_size=40),
    },
)
headers = st.lists(st.tuples(st.sampled_from(["event_type", "content-type", "x"]), st.binary(max_size=30)), max_size=3)


def _check_everywhere(value: bytes, hdrs: list[tuple[str, bytes]], key: bytes | None) -> None:
    record = Record("credit.any", 1, 9, key, value, tuple(hdrs))
    for accepted in ACCEPTED.values():
        result = decode(record, accepted)
        assert isinstance(result, (Event, RefusedRecord))
        if isinstance(result, RefusedRecord):
            assert result.error and result.error_type
            letter = dead_letter_for(result, failed_by="test", at=NOW)  # every refusal can be dead-lettered
            assert letter.source_offset == 9
            if accepted == (ApplicationReceived,):
                unreadable(result, NOW)  # salvaging a customer never crashes either
        else:
            assert isinstance(result, accepted)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.binary(max_size=2048), hdrs=headers, key=st.none() | st.binary(max_size=40))
def test_arbitrary_bytes_are_decoded_or_refused(value: bytes, hdrs: list[tuple[str, bytes]], key: bytes | None) -> None:
    _check_everywhere(value, hdrs, key)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=json_values, hdrs=headers)
def test_arbitrary_json_is_decoded_or_refused(document: object, hdrs: list[tuple[str, bytes]]) -> None:
    _check_everywhere(json.dumps(document).encode(), hdrs, b"cus_0123456789")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=event_like)
def test_event_shaped_json_is_decoded_or_refused(document: dict[str, object]) -> None:
    _check_everywhere(json.dumps(document).encode(), [], b"cus_0123456789")


@settings(max_examples=50, deadline=None)
@given(depth=st.integers(30, 50_000))
def test_deep_nesting_is_refused_without_recursion(depth: int) -> None:
    record = Record("credit.any", 0, 1, None, b"[" * depth + b"]" * depth)
    result = decode(record, (ApplicationReceived,))
    assert isinstance(result, RefusedRecord)
