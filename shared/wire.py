"""The wire format: events <-> Kafka records (JSON value, customer key, type/version/correlation headers).

Pure functions, no I/O: the services' adapters and every test use the same encoding.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from pydantic import ValidationError

from shared.contracts import DeadLetter, Event, deterministic_id

__all__ = [
    "MAX_DEAD_LETTER_BYTES",
    "MAX_EVENT_BYTES",
    "REPLAY_HEADER",
    "Record",
    "RefusedRecord",
    "WireMessage",
    "dead_letter_for",
    "decode",
    "encode",
    "header",
    "event_key",
    "serialised",
]

# Events are small (an application is ~1 KiB). Anything far larger is refused before parsing, so a
# hostile or broken producer cannot make a service parse megabytes of JSON.
MAX_EVENT_BYTES = 64 * 1024
# Kept in a dead letter at most; the rest is marked truncated.
MAX_DEAD_LETTER_PAYLOAD = 256 * 1024
# A whole dead letter, as JSON, stays under this: well within the broker's default message limit
# (1 MiB), whatever the refused record carried. A record's key and headers are capped first (control
# characters cost six bytes each in JSON); then the payload is cut, or left out and said so.
MAX_DEAD_LETTER_BYTES = 512 * 1024
MAX_HEADERS = 32
MAX_HEADER_KEY = 64
MAX_HEADER_VALUE = 512
MAX_KEY = 256
# pydantic's JSON parser refuses deeper nesting on its own; this bound is ours and documented.
MAX_JSON_DEPTH = 32
# Header of a record re-published from a dead letter (`creditwindow dlq replay`): the letter's event_id.
REPLAY_HEADER = "replay_of"


@dataclass(frozen=True, slots=True)
class WireMessage:
    key: bytes
    value: bytes
    headers: dict[str, str]
    correlation_id: str


@dataclass(frozen=True, slots=True)
class Record:
    """The parts of a consumed Kafka record the fleet looks at (an aiokafka ConsumerRecord fits)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = field(default_factory=tuple)

    @classmethod
    def of(cls, raw: Any) -> Record:
        """The record as the fleet reads it, from a consumed one (aiokafka's `ConsumerRecord`)."""
        return cls(raw.topic, raw.partition, raw.offset, raw.key, raw.value, tuple(raw.headers or ()))


@dataclass(frozen=True, slots=True)
class RefusedRecord:
    """A record that did not decode into an accepted event, and why."""

    record: Record
    error_type: str
    error: str


def event_key(event: Event) -> str:
    """The Kafka key of an event: the customer, so each customer's events stay in order."""
    for attribute in ("customer_id", "policy_name", "source_key"):
        value = getattr(event, attribute, None)
        if value:
            return str(value)
    return event.correlation_id


# An event a service both stores (its book or ledger in Redis) and publishes is serialised once:
# `serialised` keeps the bytes with the event object until `encode` takes them for that same object.
# The entry holds the event, so its id cannot be reused while the bytes wait; events are frozen, so
# the bytes stay exact. Bounded: bytes never taken (a batch that failed in between) are dropped.
_SERIALISED: dict[int, tuple[Event, bytes]] = {}
_SERIALISED_KEPT = 4096


def serialised(event: Event) -> bytes:
    """The event's JSON, the very bytes `encode` gives its Kafka record (computed once for both)."""
    value = event.model_dump_json().encode()
    if len(_SERIALISED) >= _SERIALISED_KEPT:
        _SERIALISED.clear()
    _SERIALISED[id(event)] = (event, value)
    return value


def encode(event: Event) -> WireMessage:
    kept = _SERIALISED.pop(id(event), None)
    value = kept[1] if kept is not None and kept[0] is event else event.model_dump_json().encode()
    headers = {
        "content-type": "application/json",
        "event_type": event.event_type,
        "schema_version": str(event.schema_version),
        "correlation_id": event.correlation_id,
    }
    return WireMessage(
        key=event_key(event).encode(), value=value, headers=headers, correlation_id=event.correlation_id
    )


def _limit(model: type[Event]) -> int:
    # A dead letter carries a refused record (up to a few hundred KB); every other event is small.
    return MAX_DEAD_LETTER_BYTES if model is DeadLetter else MAX_EVENT_BYTES


def _json_depth_exceeds(raw: bytes, limit: int) -> bool:
    # A linear scan outside strings: cheap, and it runs before any parser allocates.
    depth = 0
    in_string = False
    escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):  # { [
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x7D, 0x5D):
            depth -= 1
    return False


def header(record: Record, name: str) -> str | None:
    """A record header's value as text (None when absent)."""
    for key, value in record.headers or ():
        if key == name:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return None


@cache
def _accepting(accepted: tuple[type[Event], ...]) -> tuple[dict[str, type[Event]], int]:
    # Per record this was a dict and a max over the accepted types; a service has a few such tuples.
    types = {model.EVENT_TYPE: model for model in accepted}
    return types, max((_limit(model) for model in types.values()), default=MAX_EVENT_BYTES)


def decode(record: Record, accepted: Iterable[type[Event]]) -> Event | RefusedRecord:
    """Decode a record into one of the accepted event types, or say why it is refused."""
    types, largest = _accepting(accepted if isinstance(accepted, tuple) else tuple(accepted))
    raw = record.value
    if not raw:
        return RefusedRecord(record, "undecodable", "empty value")
    if len(raw) > largest:
        return RefusedRecord(record, "too_large", f"value is {len(raw)} bytes, limit {largest}")
    # Counting brackets is C-speed; only a record that could be too deep pays for the scan.
    if raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH and _json_depth_exceeds(raw, MAX_JSON_DEPTH):
        return RefusedRecord(record, "too_deep", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    event_type = header(record, "event_type")
    if event_type is None:
        # Producers other than ours may omit headers: the body names its type too.
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return RefusedRecord(record, "undecodable", f"not JSON: {exc}")
        if not isinstance(body, dict):
            return RefusedRecord(record, "invalid", "JSON value is not an object")
        event_type = body.get("event_type")
    model = types.get(event_type) if isinstance(event_type, str) else None
    if model is None:
        known = ", ".join(sorted(types))
        return RefusedRecord(record, "unexpected_type", f"event_type {event_type!r} is not one of: {known}")
    if len(raw) > _limit(model):
        return RefusedRecord(record, "too_large", f"value is {len(raw)} bytes, limit {_limit(model)}")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        kind = "undecodable" if any(e["type"] == "json_invalid" for e in exc.errors()) else "invalid"
        return RefusedRecord(record, kind, _summarise(exc))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        return RefusedRecord(record, "undecodable", str(exc)[:500])


def _summarise(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:10]:
        location = ".".join(str(p) for p in error["loc"]) or "(root)"
        parts.append(f"{location}: {error['msg']}")
    more = exc.error_count() - len(parts)
    if more > 0:
        parts.append(f"... and {more} more")
    return "; ".join(parts)[:2000]


def dead_letter_for(refused: RefusedRecord, *, failed_by: str, at: datetime) -> DeadLetter:
    """The dead letter, written at `at`, for a refused record: original bytes and headers, source position, reason."""
    record = refused.record
    raw = record.value or b""
    headers = {
        str(k)[:MAX_HEADER_KEY]: (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))[:MAX_HEADER_VALUE]
        for k, v in list(record.headers or ())[:MAX_HEADERS]
    }
    key = record.key.decode("utf-8", "replace")[:MAX_KEY] if record.key else None
    letter = _letter(refused, failed_by, raw[:MAX_DEAD_LETTER_PAYLOAD], len(raw), headers, key, at)
    size = len(letter.model_dump_json())
    if size <= MAX_DEAD_LETTER_BYTES:
        return letter
    # Too large with the payload (its base64 costs 4 bytes per 3): keep what fits, or nothing.
    room = MAX_DEAD_LETTER_BYTES - (size - len(letter.payload_b64)) - 64
    kept = raw[: max(0, room) * 3 // 4]
    return _letter(refused, failed_by, kept, len(raw), headers, key, at, omitted=not kept)


def _letter(
    refused: RefusedRecord, failed_by: str, kept: bytes, size: int, headers: dict[str, str], key: str | None, at: datetime, *, omitted: bool = False
) -> DeadLetter:
    record = refused.record
    return DeadLetter(
        # The same refused record always gives the same dead letter: redeliveries and replicas dedupe.
        event_id=deterministic_id("deadletter", failed_by, record.topic, record.partition, record.offset),
        correlation_id=(headers.get("correlation_id") or f"{record.topic}:{record.partition}:{record.offset}")[:80],
        producer=failed_by,
        occurred_at=at,
        error=refused.error[:2000],
        error_type=refused.error_type,
        failed_by=failed_by,
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        source_key=key,
        payload_b64=base64.b64encode(kept).decode(),
        payload_truncated=len(kept) < size,
        payload_omitted=omitted,
        headers=headers,
        # A replay that fails again says which dead letter it came from.
        replayed_from=headers[REPLAY_HEADER][:80] if REPLAY_HEADER in headers else None,
    )

