"""Review by a person and suspensions (topic `credit.reviews`, keyed by customer, kept forever).

A customer asks for a review of a decision by its reference (`ReviewRequested`, from upstream apps);
the policy service acknowledges it (`ReviewOpened`); an operator decides it, signed with their key
(`ReviewDecided`); the policy service carries it out (`ReviewConcluded`, and on an overturn a new
decision on `credit.windows`). Operators also suspend a customer's right to apply and lift it
(`CustomerSuspended`, `SuspensionLifted`), signed the same way. Unsigned or forged operator actions
are refused to the dead-letter topic.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints

from shared.contracts.applications import DEFAULT_LOCALE, Locale
from shared.contracts.envelope import ApplicationId, CustomerId, Event, FreeText

__all__ = [
    "OPERATOR_ACTIONS",
    "SUSPENSION_REASONS",
    "CustomerSuspended",
    "OperatorAction",
    "ReviewConcluded",
    "ReviewDecided",
    "ReviewOpened",
    "ReviewOutcome",
    "ReviewRequested",
    "SuspensionLifted",
    "SuspensionReason",
]

# Why an operator suspends a customer: a fixed list, for audit and metrics. The customer is never
# told which: their message is the same neutral text for every reason.
SuspensionReason = Literal["identity_check", "suspected_fraud", "customer_request", "collections", "legal_order"]
SUSPENSION_REASONS: tuple[str, ...] = ("identity_check", "suspected_fraud", "customer_request", "collections", "legal_order")
ReviewOutcome = Literal["upheld", "overturned"]

# As customers type it: CW-XXXX-XXXX-XXXX (any case, with or without dashes) or the decision id.
TypedReference = Annotated[str, StringConstraints(min_length=12, max_length=40, pattern=r"^[A-Za-z0-9-]+$")]
Reference = Annotated[str, StringConstraints(pattern=r"^CW-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")]
OperatorId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")]

# Envelope fields are not signed: the signature covers what the action does and who did it.
_UNSIGNED = frozenset({"event_id", "event_type", "schema_version", "occurred_at", "correlation_id", "causation_id", "producer", "signature"})


class ReviewRequested(Event):
    """A customer asks that a person review a decision (PIPL art. 24). From upstream apps."""

    EVENT_TYPE: ClassVar[str] = "ReviewRequested"

    customer_id: CustomerId
    reference: TypedReference = Field(description="The decision reference the customer quotes (CW-XXXX-XXXX-XXXX) or the decision id.")
    statement: FreeText = Field(
        default="", max_length=2000, description="The customer's own words (personal numbers and e-mail addresses are masked)."
    )
    locale: Locale = DEFAULT_LOCALE


class ReviewOpened(Event):
    """The policy service found the decision and opened a review: a person will decide it by `respond_by`."""

    EVENT_TYPE: ClassVar[str] = "ReviewOpened"

    review_id: uuid.UUID = Field(description="One review per decision: derived from the reference, so duplicate requests make one review.")
    reference: Reference
    decision_id: uuid.UUID
    application_id: ApplicationId
    customer_id: CustomerId
    locale: Locale = DEFAULT_LOCALE
    requested_at: datetime = Field(description="When the customer first asked.")
    respond_by: datetime = Field(description="When a person will have decided it at the latest (the policy's review time).")
    reviewed_outcome: Literal["opened", "closed"]
    reviewed_category: str | None = Field(default=None, max_length=20)


class OperatorAction(Event):
    """An operator's signed action: HMAC-SHA256 by a key of the fleet's ring over every field but the envelope."""

    issued_by: OperatorId = Field(description="Operator id (pseudonymous).")
    issued_at: datetime
    key_id: str = Field(max_length=64, description="Which key of the fleet's key ring signed it.", examples=["k1"])
    namespace: str = Field(default="", max_length=64, description="Topic namespace it was signed for (the signature covers it).")
    signature: str = Field(pattern=r"^[0-9a-f]{64}$", description="HMAC-SHA256 hex over the signed fields.")

    def signed_fields(self, namespace: str) -> dict[str, Any]:
        """What the signature covers in a fleet whose topic namespace is `namespace`."""
        fields = self.model_dump(mode="json", exclude=set(_UNSIGNED))
        fields["namespace"] = namespace
        return fields


class ReviewDecided(OperatorAction):
    """A person decided a review: uphold the decision, or overturn it and open the window with `limit`."""

    EVENT_TYPE: ClassVar[str] = "ReviewDecided"

    review_id: uuid.UUID
    reference: Reference
    decision_id: uuid.UUID
    customer_id: CustomerId
    outcome: ReviewOutcome
    limit: int | None = Field(default=None, ge=1, le=100_000_000, description="Overturned: the limit to open, CNY (the regulatory caps still apply).")
    note: FreeText = Field(default="", max_length=1000, description="The reviewer's note, told to the customer.")


class ReviewConcluded(Event):
    """The policy service carried out a review's decision; on an overturn, `new_decision_id` is the new decision."""

    EVENT_TYPE: ClassVar[str] = "ReviewConcluded"

    review_id: uuid.UUID
    reference: Reference
    decision_id: uuid.UUID = Field(description="The decision reviewed.")
    application_id: ApplicationId
    customer_id: CustomerId
    locale: Locale = DEFAULT_LOCALE
    outcome: ReviewOutcome
    note: FreeText = Field(default="", max_length=1000)
    decided_by: OperatorId
    new_decision_id: uuid.UUID | None = None
    reviewed_outcome: Literal["opened", "closed"]
    reviewed_category: str | None = Field(default=None, max_length=20)


class CustomerSuspended(OperatorAction):
    """An operator suspends a customer's right to apply (暂停部分用户的申请权限): their open window
    closes and their applications close as `strategy`, until `until` or a `SuspensionLifted`."""

    EVENT_TYPE: ClassVar[str] = "CustomerSuspended"

    customer_id: CustomerId
    reason: SuspensionReason = Field(description="For operators and audit; the customer reads the same neutral text for every reason.")
    until: datetime | None = Field(default=None, description="When it ends by itself; None: until lifted.")
    note: FreeText = Field(default="", max_length=500, description="For operators only; never told to the customer.")


class SuspensionLifted(OperatorAction):
    """An operator lifts a customer's suspension: their next application is decided as any other."""

    EVENT_TYPE: ClassVar[str] = "SuspensionLifted"

    customer_id: CustomerId
    note: FreeText = Field(default="", max_length=500)


OPERATOR_ACTIONS: tuple[type[OperatorAction], ...] = (ReviewDecided, CustomerSuspended, SuspensionLifted)
