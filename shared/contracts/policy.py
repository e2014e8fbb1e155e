"""`credit.policy`: an operator applied a signed policy version (`PolicyUpdated`), or retired one of
the operators' keys (`KeyRetired`). Every policy replica reads both, in order."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import Field

from shared.contracts.envelope import Event
from shared.contracts.reviews import SIGNATURE, KeyId, OperatorAction

__all__ = ["KeyRetired", "PolicyUpdated"]


class PolicyUpdated(Event):
    """A policy document signed with an operator's Ed25519 key. Refused unless the signature verifies."""

    EVENT_TYPE: ClassVar[str] = "PolicyUpdated"

    policy_name: str = Field(max_length=64, examples=["default"])
    version: int = Field(ge=1, description="Monotonic per policy name; an older version is refused.")
    document: str = Field(max_length=200_000, description="The policy YAML, exactly as signed.")
    issued_by: str = Field(max_length=64, description="Operator id (pseudonymous).")
    issued_at: datetime
    key_id: str = Field(max_length=64, description="Which operator key of the fleet's public ring signed it.", examples=["ops-lin-2026"])
    namespace: str = Field(
        default="", max_length=64, description="Topic namespace it was signed for (the signature covers it)."
    )
    signature: str = Field(pattern=SIGNATURE, description="Ed25519, hex, over the signed fields and the namespace (64 hex digits: an HMAC of before operator keys, refused).")


class KeyRetired(OperatorAction):
    """An operator retires a key of the fleet's public ring: from `retire_at` on (at the latest), the key
    signs nothing the fleet accepts. Signed by any key of the ring that may still sign, the retired one
    included; a retirement only ever brings a key's retirement forward."""

    EVENT_TYPE: ClassVar[str] = "KeyRetired"

    retired_key_id: KeyId = Field(description="The key retired.", examples=["ops-lin-2025"])
    retire_at: datetime = Field(description="From when it signs nothing (not before `issued_at`: a retirement never reaches back).")
