"""`PolicyUpdated`: an operator applied a signed policy version (topic `credit.policy`)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import Field

from shared.contracts.envelope import Event

__all__ = ["PolicyUpdated"]


class PolicyUpdated(Event):
    """A policy document with its HMAC-SHA256 signature. Refused unless the signature verifies."""

    EVENT_TYPE: ClassVar[str] = "PolicyUpdated"

    policy_name: str = Field(max_length=64, examples=["default"])
    version: int = Field(ge=1, description="Monotonic per policy name; an older version is refused.")
    document: str = Field(max_length=200_000, description="The policy YAML, exactly as signed.")
    issued_by: str = Field(max_length=64, description="Operator id (pseudonymous).")
    issued_at: datetime
    key_id: str = Field(max_length=64, description="Which key of the fleet's key ring signed it.", examples=["k1"])
    namespace: str = Field(
        default="", max_length=64, description="Topic namespace it was signed for (the signature covers it)."
    )
    signature: str = Field(pattern=r"^[0-9a-f]{64}$", description="HMAC-SHA256 hex over the signed fields and the namespace.")
