"""The envelope every creditwindow event carries, and the base of all event models."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.clock import system_now

__all__ = [
    "ApplicationId",
    "CustomerId",
    "Event",
    "FreeText",
    "Part",
    "deterministic_id",
]

# A namespace for ids derived from other ids, so a redelivered input yields the same output id.
_ID_NAMESPACE = uuid.UUID("5b0f6c0e-8c1a-4f43-9e2e-7d3c0c1d2a10")

_MOBILE = re.compile(r"^\+?(86)?1[3-9]\d{9}$")
_RESIDENT_ID = re.compile(r"^\d{17}[\dXx]$")


def deterministic_id(*parts: object) -> uuid.UUID:
    """A UUID that is a pure function of its parts (uuid5): the same input event gives the same id."""
    return uuid.uuid5(_ID_NAMESPACE, "|".join(str(p) for p in parts))


def _pseudonymous(value: str) -> str:
    # Ids travel on every topic and in every log line: refuse ones that are really a phone number or
    # an ID-card number, so personal data cannot enter the fleet disguised as an id.
    if _MOBILE.match(value) or _RESIDENT_ID.match(value):
        raise ValueError("looks like a phone or ID-card number; ids must be pseudonymous")
    return value


CustomerId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{5,63}$"),
    AfterValidator(_pseudonymous),
    Field(
        description="Pseudonymous customer id (never a name, phone or ID-card number). Kafka key.",
        examples=["cus_8f3a51c2d9e04b77"],
    ),
]

ApplicationId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{5,79}$"),
    AfterValidator(_pseudonymous),
    Field(
        description="Id of the credit application; the correlation id of every event it causes.",
        examples=["app_0001_3c2d9e04"],
    ),
]


def _redacted(value: str) -> str:
    # Free text a person writes (a customer's statement, a reviewer's note) is kept with its event, some
    # of it forever: anything that looks like a phone, ID-card or bank card number or an e-mail address
    # is masked before it is ever stored, the same way every log line is.
    from shared.logging import redact  # not at import: the contracts stay importable on their own

    return str(redact(value)).strip()


FreeText = Annotated[str, AfterValidator(_redacted)]


# Every contract model: immutable, unknown fields ignored (contracts only gain fields), and no NaN or
# infinity in any float (a NaN score would compare false against every cut-off).
CONTRACT_CONFIG = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)


class Part(BaseModel):
    """Base of the value objects events carry (facts, reasons, the limit's basis)."""

    model_config = CONTRACT_CONFIG


class Event(BaseModel):
    """Base of every event: the envelope fields, frozen, JSON on the wire.

    Subclasses set `EVENT_TYPE` and `SCHEMA_VERSION`; consumers accept the current version and the
    previous one. Changes are additive: a field is never removed or retyped within a version.
    """

    model_config = CONTRACT_CONFIG

    EVENT_TYPE: ClassVar[str] = ""
    SCHEMA_VERSION: ClassVar[int] = 1
    ACCEPTED_VERSIONS: ClassVar[frozenset[int]] = frozenset({1})

    event_id: uuid.UUID = Field(
        default_factory=uuid.uuid4, description="Unique id of this event.", examples=[uuid.UUID(int=1)]
    )
    event_type: str = Field(max_length=64, description="Name of the event type (past tense).", examples=["ApplicationReceived"])
    schema_version: int = Field(ge=1, le=99, description="Version of this event's schema.", examples=[1])
    occurred_at: datetime = Field(
        default_factory=system_now,
        description="When it happened (UTC). The fleet always sets it from its injected clock; the default (the producer's system time) serves upstream tools.",
    )
    correlation_id: str = Field(
        max_length=80,
        description="The application id this event belongs to, carried down the chain.",
        examples=["app_0001_3c2d9e04"],
    )
    causation_id: uuid.UUID | None = Field(
        default=None, description="event_id of the event that caused this one (None for a source event)."
    )
    producer: Annotated[str, StringConstraints(max_length=64)] = Field(
        default="unknown", description="The service or tool that produced the event.", examples=["scoring"]
    )

    @classmethod
    def caused_by(
        cls,
        cause: Event,
        /,
        *,
        key: tuple[object, ...] | uuid.UUID,
        producer: str,
        occurred_at: datetime,
        correlation_id: str | None = None,
        causation_id: uuid.UUID | None = None,
        **fields: Any,
    ) -> Self:
        """An event of this type that `cause` caused: the one way the fleet builds an event from another.

        Its id is derived from `key` (`deterministic_id(*key)`, or `key` itself when it is an id
        derived already), so a redelivered cause makes the same event; it carries the cause's
        correlation id (or `correlation_id`: the application it belongs to, when the cause names
        another) and names the cause as its causation (or `causation_id`, when the cause is known by
        its id only). `producer` and `occurred_at` are given: the time is the producer's injected
        clock's, never defaulted.
        """
        return cls(
            event_id=key if isinstance(key, uuid.UUID) else deterministic_id(*key),
            correlation_id=cause.correlation_id if correlation_id is None else correlation_id,
            causation_id=cause.event_id if causation_id is None else causation_id,
            producer=producer,
            occurred_at=occurred_at,
            **fields,
        )

    @model_validator(mode="before")
    @classmethod
    def _fill_type_and_version(cls, data: Any) -> Any:
        # Type and version come from the class, so producers never spell them by hand.
        if isinstance(data, dict):
            data.setdefault("event_type", cls.EVENT_TYPE)
            data.setdefault("schema_version", cls.SCHEMA_VERSION)
        return data

    @model_validator(mode="after")
    def _check_envelope(self) -> Self:
        if self.event_type != self.EVENT_TYPE:
            raise ValueError(f"event_type {self.event_type!r} is not {self.EVENT_TYPE!r}")
        if self.schema_version not in self.ACCEPTED_VERSIONS:
            raise ValueError(
                f"{self.EVENT_TYPE} schema_version {self.schema_version} is not accepted "
                f"(accepted: {sorted(self.ACCEPTED_VERSIONS)})"
            )
        if self.occurred_at.utcoffset() is None:
            raise ValueError("occurred_at must carry a time zone (UTC)")
        return self
